"""The course site's builder, used by ``tools/build_site.py``.

- :mod:`.notebooks`: finding the notebooks and reading their headers;
- :mod:`.execute`: running a notebook in a child process, with its slider frames and
  claims saved from the same kernel;
- :mod:`.render`: an executed notebook as a page (nbconvert's lab template);
- :mod:`.book`: course map, navigation, run links and the search index;
- :mod:`.assets`: the bundled scripts and fonts (npm packages in ``tools/site-assets``).
"""
