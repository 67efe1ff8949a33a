/**
 * The kiosk page: one HTML shell, one script, one style sheet, all served by the kiosk server (no
 * external asset, nothing inline: the CSP allows 'self' only). The script renders the screen the
 * server sends; the only things it ever holds are the digits being typed (dropped at every screen
 * change and after sending) and the consent choices until they are sent. Large type, big tap
 * targets, its own digit pads: a 7-inch 800×480 touchscreen and a 10-inch tablet, no keyboard.
 */
export const KIOSK_HTML = `<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no">
<title>受付 / Check-in</title><link rel="stylesheet" href="/kiosk/app.css"></head>
<body><header><button id="lang" type="button">English</button></header>
<main id="main" aria-live="polite"></main>
<script src="/kiosk/app.js"></script></body></html>
`;

export const KIOSK_CSS = `*{box-sizing:border-box}html,body{margin:0;height:100%}
body{font-family:"Noto Sans CJK JP","Noto Sans JP",sans-serif;background:#f4f7fb;color:#102030;display:flex;flex-direction:column;user-select:none;-webkit-user-select:none;touch-action:manipulation}
header{position:absolute;top:0;right:0;padding:1vh 2vw}
main{flex:1;display:flex;flex-direction:column;align-items:center;justify-content:center;gap:2.2vh;padding:max(56px,7vh) 3vw 2vh;text-align:center}
h1{font-size:clamp(26px,5.2vh,56px);margin:0;line-height:1.3}
p{font-size:clamp(18px,3.6vh,34px);margin:0}
.note{color:#405060}.warn{color:#b00020;font-weight:bold}
button{font:inherit;font-size:clamp(20px,4.2vh,40px);min-height:max(64px,9vh);min-width:max(64px,9vh);border-radius:14px;border:2px solid #1d4f91;background:#fff;color:#1d4f91;padding:0 3vw;cursor:pointer}
button.primary{background:#1d4f91;color:#fff}button:disabled{opacity:.4}
#lang{font-size:18px;min-height:48px;min-width:96px}
.pad{display:grid;grid-template-columns:repeat(3,max(96px,15vh));gap:1.4vh}
.pad button{padding:0}
.dots{font-size:clamp(30px,7vh,64px);letter-spacing:.4em;min-height:1.2em}
.row{display:flex;gap:3vw;flex-wrap:wrap;justify-content:center}
.pinrow{align-items:flex-end;flex-wrap:nowrap}
.consents{display:grid;grid-template-columns:1fr 1fr;gap:1.6vh 2vw;width:min(96vw,1100px)}
.consents button{text-align:left;font-size:clamp(17px,3.3vh,30px);padding:1vh 2vw}
.consents button[aria-pressed=true]{background:#1d4f91;color:#fff}
.consents button[aria-pressed=true]::before{content:"✓ "}
@media (max-height:520px){main{gap:1.2vh}.pad{gap:1vh}.pad button,button{min-height:56px}}
`;

export const KIOSK_JS = `"use strict";
(() => {
  const T = {
    ja: {
      lang: "English", pair: "この端末をペアリングします", pairNote: "管理画面に表示された8桁のコードを入力してください",
      pairOk: "ペアリングしました", codeBad: "コードが違うか、期限切れです",
      card: "マイナンバーカードをカードリーダーに置いてください", start: "はじめる",
      visual: "暗証番号を入力しない方（顔確認）", reading: "カードを読み取っています…",
      face: "係員が顔写真を確認します。そのままお待ちください",
      pin: "暗証番号（4桁）を入力してください", tries: "残り {n} 回", wrong: "暗証番号が違います",
      last: "次に間違えるとロックされます。最後の1回を入力しますか？", lastYes: "入力する",
      ok: "確定", clear: "訂正", cancel: "やめる",
      consents: "情報の提供に同意される項目を選んでください", consentNote: "選ばなかった項目は提供されません",
      medication: "薬剤情報", healthCheck: "特定健診等情報", treatment: "診療・手術情報", limit: "限度額適用認定証情報",
      send: "決定", checking: "確認しています…", done: "受付にお進みください",
      error: "確認できませんでした。受付にお声がけください",
      KIOSK_CARD_REMOVED: "カードが取り外されました。もう一度はじめからお願いします",
      CARD_PIN_BLOCKED: "暗証番号がロックされています。受付にお声がけください",
    },
    en: {
      lang: "日本語", pair: "Pair this kiosk", pairNote: "Enter the 8-digit code shown on the admin page",
      pairOk: "Paired", codeBad: "The code is wrong or expired",
      card: "Place your My Number card on the card reader", start: "Start",
      visual: "No PIN (face check by staff)", reading: "Reading the card…",
      face: "Staff will compare your face with the card. Please wait",
      pin: "Enter your 4-digit PIN", tries: "{n} tries left", wrong: "Wrong PIN",
      last: "One more wrong PIN locks the card. Enter the last try?", lastYes: "Enter it",
      ok: "OK", clear: "Clear", cancel: "Cancel",
      consents: "Choose the information you agree to share", consentNote: "Nothing you leave unselected is shared",
      medication: "Medication", healthCheck: "Health check-ups", treatment: "Treatment and surgery", limit: "Limit certificate",
      send: "Done", checking: "Checking…", done: "Please go to the reception desk",
      error: "The check did not succeed. Please ask at the reception desk",
      KIOSK_CARD_REMOVED: "The card was removed. Please start again",
      CARD_PIN_BLOCKED: "The PIN is locked. Please ask at the reception desk",
    },
  };
  let lang = "ja";
  let screen = null;
  let digits = "";
  let lastOk = false;
  let chosen = {};
  let idle;
  // The idle time: kiosk.idleSeconds from the server; a page parameter (?idle=N seconds) may set it.
  let idleMs = 60000;
  const idleParam = Number(new URLSearchParams(location.search).get("idle"));
  if (idleParam >= 2 && idleParam <= 600) idleMs = idleParam * 1000;
  let lastTouchSent = 0;
  const main = document.getElementById("main");
  const t = (k, n) => (T[lang][k] || k).replace("{n}", String(n));
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (k === "on") e.addEventListener("click", v); else e.setAttribute(k, v);
    for (const k of kids) e.append(k);
    return e;
  };
  const post = (path, body) =>
    fetch("/kiosk/api/" + path, { method: "POST", headers: { "content-type": "application/json", "x-onshi-kiosk": "1" }, body: JSON.stringify(body || {}), credentials: "same-origin" });
  const pad = (onDigit, onClear, onOk, okEnabled) => {
    const p = el("div", { class: "pad" });
    for (const d of ["1", "2", "3", "4", "5", "6", "7", "8", "9"]) p.append(el("button", { type: "button", "data-digit": d, on: () => onDigit(d) }, d));
    p.append(el("button", { type: "button", id: "clear", on: onClear }, t("clear")));
    p.append(el("button", { type: "button", "data-digit": "0", on: () => onDigit("0") }, "0"));
    const ok = el("button", { type: "button", id: "ok", class: "primary", on: onOk }, t("ok"));
    if (!okEnabled) ok.disabled = true;
    p.append(ok);
    return p;
  };
  const cancelButton = () => el("button", { type: "button", id: "cancel", on: () => post("cancel") }, t("cancel"));

  function render() {
    main.replaceChildren();
    document.documentElement.lang = lang;
    document.getElementById("lang").textContent = t("lang");
    if (!screen) return;
    const s = screen;
    if (s.screen === "pair") {
      main.append(el("h1", {}, t("pair")), el("p", { class: "note" }, t("pairNote")), el("div", { class: "dots", id: "dots" }, digits.padEnd(8, "－")));
      if (s.bad) main.append(el("p", { class: "warn" }, t("codeBad")));
      main.append(pad((d) => { if (digits.length < 8) { digits += d; render(); } }, () => { digits = ""; render(); }, pairNow, digits.length === 8));
    } else if (s.screen === "card" && s.visual) {
      main.append(el("h1", { id: "title" }, t("card")), cancelButton());
    } else if (s.screen === "card") {
      main.append(el("h1", { id: "title" }, t("card")), el("div", { class: "row" },
        el("button", { type: "button", id: "start", class: "primary", on: () => post("start", { mode: "pin" }) }, t("start")),
        el("button", { type: "button", id: "visual", on: () => post("start", { mode: "visual" }) }, t("visual"))));
    } else if (s.screen === "pin") {
      main.append(el("h1", { id: "title" }, t("pin")));
      if (s.wrong) main.append(el("p", { class: "warn", id: "wrong" }, t("wrong")));
      main.append(el("p", { id: "tries", class: s.triesLeft === 1 ? "warn" : "note" }, t("tries", s.triesLeft)));
      if (s.confirmRequired && !lastOk) {
        main.append(el("p", { class: "warn" }, t("last")), el("div", { class: "row" },
          el("button", { type: "button", id: "last-yes", class: "primary", on: () => { lastOk = true; render(); } }, t("lastYes")), cancelButton()));
        return;
      }
      main.append(el("div", { class: "dots", id: "dots" }, "●".repeat(digits.length).padEnd(4, "○")),
        el("div", { class: "row pinrow" }, pad((d) => { if (digits.length < 4) { digits += d; render(); } }, () => { digits = ""; render(); }, sendPin, digits.length === 4), cancelButton()));
    } else if (s.screen === "consents") {
      const box = el("div", { class: "consents" });
      for (const k of ["medication", "healthCheck", "treatment", "limit"])
        box.append(el("button", { type: "button", "data-consent": k, "aria-pressed": String(chosen[k] === true), on: () => { chosen[k] = !chosen[k]; render(); } }, t(k)));
      main.append(el("h1", { id: "title" }, t("consents")), el("p", { class: "note" }, t("consentNote")), box,
        el("div", { class: "row" }, el("button", { type: "button", id: "send", class: "primary", on: sendConsents }, t("send")), cancelButton()));
    } else if (s.screen === "error") {
      main.append(el("h1", { id: "title", class: "warn" }, T[lang][s.code] ? t(s.code) : t("error")));
    } else {
      main.append(el("h1", { id: "title" }, t(s.screen)));
      if (s.screen === "face") main.append(cancelButton());
    }
  }
  function sendPin() {
    const pin = digits;
    digits = "";
    const confirmLastTry = lastOk;
    lastOk = false;
    render();
    void post("pin", { pin, confirmLastTry });
  }
  function sendConsents() {
    const body = chosen;
    chosen = {};
    void post("consents", body);
  }
  async function pairNow() {
    const code = digits;
    digits = "";
    const r = await post("pair", { code });
    if (r.ok) connect(); else { screen = { screen: "pair", bad: true }; render(); }
  }
  function show(next) {
    // Nothing typed or chosen survives a change of screen; the wrong-PIN screen starts from empty digits.
    if (!screen || next.screen !== screen.screen || next.screen === "pin") { digits = ""; if (next.screen !== "pin") lastOk = false; }
    if (next.screen !== "consents") chosen = {};
    // A check has ended: the next patient starts in Japanese.
    if (next.screen === "card" && !next.visual && screen && screen.screen !== "card") lang = "ja";
    screen = next;
    document.body.dataset.screen = next.screen;
    // A new screen (a card put down, a wrong PIN) starts the idle clock again, as the server's does.
    restartIdle();
    render();
  }
  function connect() {
    const es = new EventSource("/kiosk/api/screens");
    es.onmessage = (m) => show(JSON.parse(m.data));
    es.onerror = () => { es.close(); setTimeout(boot, 3000); };
  }
  async function boot() {
    const r = await fetch("/kiosk/api/session", { credentials: "same-origin" }).then((x) => x.json()).catch(() => ({ paired: false }));
    if (!(idleParam >= 2 && idleParam <= 600) && r.idleSeconds >= 2) { idleMs = r.idleSeconds * 1000; restartIdle(); }
    if (r.paired) connect(); else show({ screen: "pair" });
  }
  const checking = () => !!screen && screen.screen !== "pair" && (screen.screen !== "card" || screen.visual === true);
  function restartIdle() {
    clearTimeout(idle);
    idle = setTimeout(() => { if (checking()) void post("cancel"); digits = ""; chosen = {}; lang = "ja"; render(); }, idleMs);
  }
  function touched() {
    // While a check runs, the server's idle clock hears of the touch too (at most every 5 s).
    if (checking() && Date.now() - lastTouchSent > 5000) { lastTouchSent = Date.now(); void post("touch"); }
    restartIdle();
  }
  document.addEventListener("pointerdown", touched, true);
  document.getElementById("lang").addEventListener("click", () => { lang = lang === "ja" ? "en" : "ja"; render(); });
  restartIdle();
  void boot();
})();
`;
