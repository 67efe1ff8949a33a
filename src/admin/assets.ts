/**
 * The page's stylesheet and its one script, served from /assets/ so the Content-Security-Policy can
 * forbid inline script and style. Kept as strings so the build (tsc) ships them without a copy step.
 * The page works without the script; it only adds live updates and confirmations.
 */
export const ADMIN_CSS = `
:root { --ok:#1b7f3b; --warn:#a66300; --bad:#b3261e; --muted:#666; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; font-family: "Noto Sans JP","Hiragino Sans","Yu Gothic",system-ui,sans-serif; color:#1f2328; background:#fff; }
header { display:flex; align-items:center; justify-content:space-between; padding:.6rem 1rem; background:#0b3d66; color:#fff; }
header a { color:#fff; }
header h1 { font-size:1.1rem; margin:0; }
nav { display:flex; flex-wrap:wrap; gap:.2rem; padding:.4rem 1rem; background:var(--bg); border-bottom:1px solid var(--line); }
nav a { padding:.3rem .6rem; border-radius:4px; text-decoration:none; color:#0b3d66; }
nav a[aria-current=page] { background:#0b3d66; color:#fff; }
nav form { margin-left:auto; }
main { padding:1rem; max-width:72rem; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill,minmax(16rem,1fr)); gap:.8rem; }
.tile { border:1px solid var(--line); border-radius:6px; padding:.7rem; }
.tile h2 { font-size:.85rem; margin:0 0 .3rem; color:var(--muted); font-weight:normal; }
.tile .v { font-size:1.15rem; }
[data-tone=ok] { color:var(--ok); } [data-tone=warn] { color:var(--warn); } [data-tone=bad] { color:var(--bad); font-weight:bold; } [data-tone=muted] { color:var(--muted); }
.fp { font-family:monospace; font-size:.8rem; word-break:break-all; }
table { border-collapse:collapse; width:100%; }
th, td { border-bottom:1px solid var(--line); padding:.35rem .5rem; text-align:left; vertical-align:top; }
.msg { padding:.6rem .8rem; border-radius:4px; margin:.6rem 0; background:#ddf4ff; }
.msg.error { background:#ffebe9; color:var(--bad); }
.token { font-family:monospace; padding:.5rem; background:var(--bg); border:1px dashed var(--ok); word-break:break-all; user-select:all; }
form.inline { display:inline; }
label { display:block; margin:.5rem 0 .2rem; }
input[type=text], input[type=password], input[type=number], select { padding:.35rem; min-width:18rem; max-width:100%; }
button { padding:.35rem .9rem; cursor:pointer; }
.login { max-width:26rem; margin:3rem auto; }
.settings td:first-child { font-family:monospace; white-space:nowrap; }
.hint { color:var(--muted); font-size:.85rem; }
.chart { width:100%; height:auto; max-width:48rem; font-size:11px; }
.chart line { stroke:var(--line); } .chart text { fill:var(--muted); }
.c-central { fill:var(--ok); background:var(--ok); } .c-cache { fill:var(--warn); background:var(--warn); } .c-none { fill:var(--bad); background:var(--bad); }
.c-line { fill:none; stroke:#0b3d66; stroke-width:2; }
.legend .k { display:inline-block; width:.8rem; height:.8rem; margin:0 .2rem 0 .6rem; }
.attention { border:1px solid var(--warn); border-radius:6px; padding:.4rem .8rem; margin-bottom:.8rem; }
.attention h3 { margin:.2rem 0; font-size:1rem; }
.attention .todo { display:block; color:#1f2328; font-weight:normal; font-size:.9rem; }
`;

export const ADMIN_JS = `'use strict';
(function () {
  function apply(fields) {
    Object.keys(fields).forEach(function (k) {
      document.querySelectorAll('[data-field="' + k + '"]').forEach(function (el) {
        el.textContent = fields[k].text;
        el.setAttribute('data-tone', fields[k].tone);
      });
    });
    var u = document.querySelector('[data-updated]');
    if (u) u.textContent = new Date().toLocaleTimeString();
  }
  if (document.querySelector('[data-live]')) {
    if (window.EventSource) {
      var es = new EventSource('/api/events');
      es.addEventListener('status', function (e) { apply(JSON.parse(e.data).fields); });
      es.addEventListener('logout', function () { es.close(); location.assign('/login?expired=1'); });
      // A form this page submits (logout above all) navigates by itself: the stream's own
      // "logout" must not start a second navigation that aborts the first.
      // (Bubbling, so a form whose confirm() was declined has already said so.)
      document.addEventListener('submit', function (e) { if (!e.defaultPrevented) es.close(); });
    } else {
      setInterval(function () {
        fetch('/api/status', { credentials: 'same-origin' }).then(function (r) {
          if (r.status === 401) { location.assign('/login?expired=1'); return; }
          return r.json().then(function (b) { apply(b.fields); });
        }).catch(function () {});
      }, 2000);
    }
  }
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (e) { if (!window.confirm(f.getAttribute('data-confirm'))) e.preventDefault(); });
  });
})();
`;
