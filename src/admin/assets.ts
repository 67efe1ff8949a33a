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
.c-pin { fill:#0b3d66; background:#0b3d66; } .c-visual { fill:#5b9bd5; background:#5b9bd5; } .c-numbers { fill:#9a6700; background:#9a6700; }
.chart .share { fill:#1f2328; font-size:10px; }
.actions a, a.month { display:inline-flex; align-items:center; min-height:44px; min-width:44px; }
.actions a { padding:.3rem .9rem; border:1px solid var(--line); border-radius:4px; text-decoration:none; color:#0b3d66; }
.c-line { fill:none; stroke:#0b3d66; stroke-width:2; }
.legend .k { display:inline-block; width:.8rem; height:.8rem; margin:0 .2rem 0 .6rem; }
.attention { border:1px solid var(--warn); border-radius:6px; padding:.4rem .8rem; margin-bottom:.8rem; }
.attention h3 { margin:.2rem 0; font-size:1rem; }
.attention .todo { display:block; color:#1f2328; font-weight:normal; font-size:.9rem; }
[hidden] { display:none !important; }
nav .account { margin-left:auto; display:flex; flex-wrap:wrap; gap:.2rem; align-items:center; }
nav .account form { margin-left:0; }
nav a, nav button, .tabs a, button, .msg a, .timeline a { min-height:44px; }
nav a, .tabs a { display:inline-flex; align-items:center; justify-content:center; min-width:44px; }
button { min-width:44px; }
.tabs { display:flex; gap:.4rem; flex-wrap:wrap; }
.tabs a { padding:.3rem .9rem; border:1px solid var(--line); border-radius:4px; text-decoration:none; color:#0b3d66; }
.tabs a[aria-current=page] { background:#0b3d66; color:#fff; }
.timeline { margin-top:1rem; }
.timeline a { display:inline-flex; align-items:center; }
.chart.timeline { margin-top:.2rem; }
.s-up { fill:var(--ok); background:var(--ok); } .s-degraded { fill:#e3a21a; background:#e3a21a; }
.s-down { fill:var(--bad); background:var(--bad); } .s-unknown { fill:#d0d7de; background:#d0d7de; }
.t-up { fill:var(--ok); } .t-down { fill:var(--bad); }
.c-p50 { fill:none; stroke:#0b3d66; stroke-width:2; background:#0b3d66; } circle.c-p50 { fill:#0b3d66; } circle.c-p95 { fill:#8250df; stroke:none; }
.c-p95 { fill:none; stroke:#8250df; stroke-width:2; stroke-dasharray:5 3; background:#8250df; }
td.span { white-space:nowrap; }
.scroll { max-width:100%; overflow-x:auto; }
.msg.warn { background:#fff8c5; color:#1f2328; border:1px solid var(--warn); }
.msg.warn li { margin:.2rem 0; }
table.diff del { color:var(--muted); } table.diff ins { text-decoration:none; font-weight:bold; }
tr.risky td:first-child { color:var(--bad); }
.lock { color:var(--warn); }
fieldset.scopes { border:1px solid var(--line); border-radius:6px; margin:.6rem 0; padding:.4rem .8rem; }
label.check { display:flex; gap:.5rem; align-items:flex-start; min-height:44px; padding:.3rem 0; }
label.check input { width:1.3rem; height:1.3rem; margin-top:.15rem; flex:none; }
.client-add input[type=text] { width:100%; max-width:26rem; min-width:0; }
.copy-row { display:flex; gap:.6rem; align-items:center; flex-wrap:wrap; }
details.revoked { margin-top:1rem; } details.revoked summary { min-height:44px; display:flex; align-items:center; cursor:pointer; }
p.search input { width:100%; max-width:26rem; min-width:0; min-height:44px; }
.settings td:first-child { white-space:normal; }
button.secondary { background:#fff; }
button.danger { color:var(--bad); }
nav .badge { margin-left:.3rem; padding:0 .4rem; border-radius:.8rem; background:var(--warn); color:#fff; font-size:.75rem; font-weight:bold; }
nav .badge:empty { display:none; }
form.filters { display:flex; flex-wrap:wrap; gap:.4rem .8rem; align-items:flex-end; margin-bottom:.6rem; }
form.filters .field label { margin:.2rem 0; }
form.filters select, form.filters input { min-width:0; min-height:44px; }
form.filters .wide input { width:18rem; max-width:100%; }
form.filters .buttons { display:flex; gap:.4rem; flex-wrap:wrap; align-items:center; }
a.button { display:inline-flex; align-items:center; min-height:44px; padding:.3rem .9rem; border:1px solid var(--line); border-radius:4px; text-decoration:none; color:#0b3d66; }
.pager a { display:inline-flex; align-items:center; min-height:44px; min-width:44px; padding:0 .6rem; margin-right:1rem; }
table.cards td.duration { white-space:nowrap; }
code { font-family:monospace; background:var(--bg); padding:.1rem .3rem; word-break:break-all; }
@media (max-width: 40rem) {
  main { padding:.6rem; }
  nav { padding:.4rem .6rem; }
  input[type=text], input[type=password], input[type=number], select { min-width:0; width:100%; }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display:block; width:100%; }
  table.cards thead { display:none; }
  table.cards tr { border-bottom:1px solid var(--line); padding:.4rem 0; }
  table.cards td { border:none; padding:.15rem 0; }
  table.cards td[data-label]::before { content:attr(data-label); display:block; color:var(--muted); font-size:.8rem; }
  table.settings tr.group th { display:block; padding-top:.8rem; }
}
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
      es.addEventListener('timeline', function (e) {
        var t = document.querySelector('[data-timeline]');
        if (t) t.innerHTML = JSON.parse(e.data).html;
      });
      es.addEventListener('attention', function (e) {
        var a = document.querySelector('[data-attention]');
        if (a) a.innerHTML = JSON.parse(e.data).html;
      });
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
  // /history's pictures: fetched again every minute (the rows are 5-minute steps), as the dashboard
  // is pushed; /api/ does not count as use, so an open page still idles out.
  var hist = document.querySelector('[data-history]');
  if (hist) {
    setInterval(function () {
      fetch('/api/history?range=' + hist.getAttribute('data-history'), { credentials: 'same-origin' }).then(function (r) {
        if (r.status === 401) { location.assign('/login?expired=1'); return; }
        return r.json().then(function (b) { hist.innerHTML = b.html; });
      }).catch(function () {});
    }, Number(hist.getAttribute('data-refresh-ms')) || 60000);
  }
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (e) { if (!window.confirm(f.getAttribute('data-confirm'))) e.preventDefault(); });
  });
  // A new token: copied to the clipboard on request (the text stays selectable where that fails).
  document.querySelectorAll('button[data-copy]').forEach(function (b) {
    b.addEventListener('click', function () {
      var src = document.getElementById(b.getAttribute('data-copy'));
      var said = b.parentNode.querySelector('.copy-said');
      var text = src ? src.textContent.trim() : '';
      function tell(ok) { if (said) said.textContent = b.getAttribute(ok ? 'data-copied' : 'data-copy-failed'); }
      function fallback() {
        var r = document.createRange(); r.selectNodeContents(src);
        var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
        var ok = false; try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
        tell(ok);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { tell(true); }, fallback);
      } else fallback();
    });
  });
  // The settings' search: rows whose label, explanation or key contain every word typed.
  document.querySelectorAll('input[data-filter]').forEach(function (input) {
    var table = document.querySelector(input.getAttribute('data-filter'));
    var none = document.querySelector('[data-filter-none]');
    if (!table) return;
    input.addEventListener('input', function () {
      var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      var shown = {}; var any = false;
      table.querySelectorAll('tr[data-search]').forEach(function (tr) {
        var hay = tr.getAttribute('data-search');
        var ok = words.every(function (w) { return hay.indexOf(w) >= 0; });
        tr.hidden = !ok;
        if (ok) { shown[tr.getAttribute('data-group')] = true; any = true; }
      });
      table.querySelectorAll('tr[data-group-head]').forEach(function (tr) {
        tr.hidden = !shown[tr.getAttribute('data-group-head')];
      });
      if (none) none.hidden = any;
    });
  });
  // A restart: wait until the gateway has gone away and answers again, then log in anew.
  var restarting = document.querySelector('[data-restarting]');
  if (restarting) {
    var sawDown = false; var started = Date.now();
    var poll = function () {
      fetch('/login', { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
        if (sawDown && r.ok) { location.assign('/login?done=restarted'); return; }
        later();
      }, function () { sawDown = true; later(); });
    };
    var later = function () {
      if (Date.now() - started > 120000) { restarting.textContent = restarting.getAttribute('data-slow'); return; }
      setTimeout(poll, 1000);
    };
    later();
  }
})();
`;
