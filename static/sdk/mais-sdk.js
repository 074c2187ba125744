/* MAIS booking widget loader: no dependencies, kept under 1 KB gzipped. */
(function (d, w) {
  var L = w.location;

  function embed(s) {
    if (s.maisDone) return;
    s.maisDone = 1;
    var o = s.dataset,
      // Only the platform that served this script may talk to its frame.
      P = new URL(s.src).origin,
      q = new URLSearchParams(L.search),
      b = q.get("mais_booking"),
      c = o.target ? d.querySelector(o.target) : d.createElement("div"),
      f = d.createElement("iframe"),
      u = new URL(L.href),
      p;
    if (!c) return;
    if (!o.target) s.parentNode.insertBefore(c, s.nextSibling);
    u.searchParams.delete("mais_booking");
    p = new URLSearchParams({ key: o.key, origin: L.origin, ret: u.href });
    if (b) p.set("booking", b);
    f.src = P + "/widget/" + encodeURIComponent(o.tenant) + "/?" + p;
    f.title = "Booking widget";
    f.allow = "payment";
    f.scrolling = "no";
    f.style.cssText = "width:100%;border:0;overflow:hidden;display:block;height:480px";
    c.appendChild(f);
    w.addEventListener("message", function (e) {
      var m = e.data || {},
        t = m.type,
        v = m.url;
      if (e.source !== f.contentWindow || e.origin !== P) return;
      if (t == "mais:resize" && m.height > 0) f.style.height = Math.ceil(m.height) + "px";
      if (
        t == "mais:navigate" &&
        typeof v == "string" &&
        (!v.indexOf("https://checkout.stripe.com/") || !v.indexOf(P + "/"))
      )
        L.assign(v);
      if (t == "mais:booked")
        c.dispatchEvent(
          new CustomEvent("mais:booked", { detail: { reference: m.reference }, bubbles: true })
        );
    });
  }

  // An async script has no currentScript in some browsers: then take every snippet not yet done.
  var s = d.currentScript;
  if (s) embed(s);
  else [].forEach.call(d.querySelectorAll('script[src*="/static/sdk/mais-sdk.js"]'), embed);
})(document, window);
