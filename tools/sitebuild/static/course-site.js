/* The course site's own script: frame players for the slider demos, and search.
 * No network: frames are files beside the page, the search index is a script. */
(function () {
  "use strict";

  /* A slider demo's frame player: the range input (or select) picks a pre-rendered frame. */
  function initFrames(root) {
    var data = JSON.parse(root.getAttribute("data-course-frames"));
    var input = root.querySelector(".course-frames-input");
    var image = root.querySelector("img.course-frame");
    var output = root.querySelector("output");
    var altPrefix = image.alt.replace(/= [^=]*$/, "= ");
    function show() {
      var k = Number(input.value);
      image.src = data.frames[k];
      image.alt = altPrefix + data.labels[k];
      root.setAttribute("data-frame", String(k));
      if (output) output.textContent = data.labels[k];
      if (input.type === "range") input.setAttribute("aria-valuetext", data.labels[k]);
    }
    input.addEventListener("input", show);
    input.addEventListener("change", show);
    window.addEventListener("load", function () {
      data.frames.forEach(function (src) { new Image().src = src; });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".course-frames"), initFrames);

  /* Search: MiniSearch over one document per section, loaded on first use. */
  var index = null;
  var waiting = [];
  function loadScript(src, done, failed) {
    var script = document.createElement("script");
    script.src = src;
    script.onload = done;
    script.onerror = failed;
    document.head.appendChild(script);
  }
  /* MiniSearch is a UMD script: on a page with require.js (the notebook pages, for the
   * widgets) it defines an AMD module, elsewhere a global. */
  function loadMiniSearch(done, failed) {
    var src = "assets/minisearch.js";
    if (typeof window.requirejs === "function" && window.define && window.define.amd) {
      window.requirejs([src], done, failed);
    } else {
      loadScript(src, function () { done(window.MiniSearch); }, failed);
    }
  }
  function withIndex(callback, failed) {
    if (index) return callback(index);
    waiting.push(callback);
    if (waiting.length > 1) return;
    loadMiniSearch(function (MiniSearch) {
      loadScript("search-index.js", function () {
        index = new MiniSearch({
          fields: ["page", "section", "text", "code"],
          storeFields: ["url", "page", "section", "text"],
          searchOptions: {
            boost: { section: 3, page: 2, code: 0.5 },
            prefix: true,
            fuzzy: 0.2,
            combineWith: "AND"
          }
        });
        index.addAll(window.COURSE_SEARCH_DOCUMENTS || []);
        waiting.splice(0).forEach(function (cb) { cb(index); });
      }, failed);
    }, failed);
  }
  function snippet(text, query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var lower = text.toLowerCase();
    var at = -1;
    for (var i = 0; i < words.length && at < 0; i++) at = lower.indexOf(words[i]);
    var start = Math.max(0, at - 60);
    var piece = text.slice(start, start + 180);
    return (start > 0 ? "\u2026" : "") + piece + (start + 180 < text.length ? "\u2026" : "");
  }
  function showResults(box, list, query, results) {
    list.textContent = "";
    if (!results.length) {
      var none = document.createElement("li");
      none.className = "course-search-none";
      none.textContent = "Nothing found for \u201c" + query + "\u201d.";
      list.appendChild(none);
    }
    results.slice(0, 12).forEach(function (hit) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = hit.url;
      var where = document.createElement("strong");
      where.textContent = hit.page + (hit.section !== hit.page ? " \u203a " + hit.section : "");
      var text = document.createElement("span");
      text.textContent = snippet(hit.text || "", query);
      link.appendChild(where);
      link.appendChild(text);
      item.appendChild(link);
      list.appendChild(item);
    });
    list.hidden = false;
  }
  function initSearch(box) {
    var input = box.querySelector(".course-search-input");
    var list = box.querySelector(".course-search-results");
    function failed() {
      list.textContent = "";
      var item = document.createElement("li");
      item.className = "course-search-none";
      item.textContent = "The search index could not be loaded.";
      list.appendChild(item);
      list.hidden = false;
    }
    function run() {
      var query = input.value.trim();
      if (query.length < 2) { list.hidden = true; return; }
      withIndex(function (idx) { showResults(box, list, query, idx.search(query)); }, failed);
    }
    input.addEventListener("focus", function () { withIndex(function () {}, failed); });
    input.addEventListener("input", run);
    input.addEventListener("keydown", function (event) {
      var first = list.querySelector("a");
      if (event.key === "Enter" && first) window.location.href = first.href;
      if (event.key === "ArrowDown" && first) { event.preventDefault(); first.focus(); }
      if (event.key === "Escape") list.hidden = true;
    });
    list.addEventListener("keydown", function (event) {
      var links = Array.prototype.slice.call(list.querySelectorAll("a"));
      var k = links.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && k + 1 < links.length) { event.preventDefault(); links[k + 1].focus(); }
      if (event.key === "ArrowUp") { event.preventDefault(); (k > 0 ? links[k - 1] : input).focus(); }
      if (event.key === "Escape") { list.hidden = true; input.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (!box.contains(event.target)) list.hidden = true;
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".course-search"), initSearch);
})();
