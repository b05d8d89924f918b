/* MathJax 3 settings for the course site (loaded before tex-chtml-full.js): $...$ and
 * \(...\) inline, $$...$$ and \[...\] displayed, as in JupyterLab. The Jupyter widgets
 * typeset their labels through MathJax 2's MathJax.Hub.Queue; Hub maps that onto
 * MathJax 3 so that a widget with a description renders without an error. */
(function () {
  "use strict";
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        var element = Array.isArray(job) && job[0] === "Typeset" ? job[2] : null;
        if (element && window.MathJax && window.MathJax.typesetPromise) {
          window.MathJax.typesetPromise([element]).catch(function () {});
        }
      }
    }
  };
  window.MathJax = {
    tex: {
      inlineMath: [["$", "$"], ["\\(", "\\)"]],
      displayMath: [["$$", "$$"], ["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
      tags: "ams"
    },
    options: { ignoreHtmlClass: "tex2jax_ignore" },
    startup: {
      ready: function () {
        window.MathJax.startup.defaultReady();
        window.MathJax.Hub = hub;
      }
    },
    Hub: hub
  };
})();
