// ipywidgets' controls typeset widget descriptions with the MathJax 2 API, MathJax.Hub.Queue
// (jupyter-widgets/ipywidgets#3829); the book loads MathJax 3, which has no Hub, so every widget
// label threw a TypeError. Map that one call onto MathJax 3. Loaded just before the widget
// manager on pages with widgets (_config.yml, nb_ipywidgets_js), which renders on 'load'.
window.addEventListener("load", function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub) return;
  mj.Hub = {
    Queue: function (command) {
      var element = command && command[2];
      var ready = mj.startup && mj.startup.promise;
      if (!ready || typeof mj.typesetPromise !== "function") return;
      ready.then(function () { return mj.typesetPromise(element ? [element] : undefined); })
        .catch(function (err) { console.warn("widget label typesetting failed:", err); });
    },
  };
});
