// Scrip's shared page helpers (an ES module): the API client, exact decimal arithmetic
// (re-exported from money.js), form errors, and a tiny DOM builder. Every page script uses these; none of them touches the token (it lives in
// an HttpOnly cookie), and every change carries the CSRF header the API asks of cookie callers.
import { Dec } from "/assets/money.js";

export const Scrip = (() => {
  const me = JSON.parse(document.getElementById("scrip-me").textContent || "null");

  // The session lasts while the page is used: the access token lives 15 minutes, and before
  // it runs out (or when a call finds it expired) the refresh cookie buys the next one. One
  // refresh at a time, shared by every call waiting on it.
  let refreshing = null;
  function refreshSession() {
    refreshing ??= fetch("/api/v1/auth/refresh", { method: "POST", headers: { "x-scrip-csrf": "1" }, credentials: "same-origin" })
      // 409: another tab refreshed a moment ago; its new cookie is ours too.
      .then((r) => r.ok || r.status === 409, () => false)
      .finally(() => { setTimeout(() => { refreshing = null; }, 0); });
    return refreshing;
  }
  if (me) setInterval(() => { if (!document.hidden) refreshSession(); }, 10 * 60 * 1000);

  /** Calls the API; resolves to {ok, status, data} where data is the JSON body or problem. */
  async function api(method, path, body, extraHeaders, retried) {
    const headers = { "x-scrip-csrf": "1", ...(extraHeaders || {}) };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, status: 0, data: { code: "network", detail: "Scrip cannot be reached; check your connection and try again." } };
    }
    let data = null;
    const text = await response.text();
    if (text) { try { data = JSON.parse(text); } catch (_) { data = { detail: text }; } }
    if (response.status === 401 && me && !retried) {
      // The access token ran out: refresh the session and send the same request once more
      // (an Idempotency-Key in extraHeaders goes with it); only a session that really ended
      // sends the user to log in, saying so.
      if (await refreshSession()) return api(method, path, body, extraHeaders, true);
      keepTyped();
      location.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search);
    }
    return { ok: response.ok, status: response.status, data };
  }

  // A session that really ended sends the user to log in; what they had typed into this page's
  // forms is kept for this tab (sessionStorage, never a password) and put back when they return.
  const typedKey = "scrip-typed:" + location.pathname + location.search;
  function keepTyped() {
    const kept = {};
    for (const field of document.querySelectorAll("form input, form select, form textarea")) {
      if (!field.id || field.type === "password" || field.type === "hidden" || field.readOnly) continue;
      kept[field.id] = field.type === "checkbox" || field.type === "radio" ? field.checked : field.value;
    }
    try { sessionStorage.setItem(typedKey, JSON.stringify(kept)); } catch (_) { /* private mode */ }
  }
  function restoreTyped() {
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(typedKey) || "null"); sessionStorage.removeItem(typedKey); } catch (_) { return; }
    if (!kept || !me) return;
    for (const [id, value] of Object.entries(kept)) {
      const field = document.getElementById(id);
      if (!field) continue;
      if (typeof value === "boolean") field.checked = value; else field.value = value;
      field.dispatchEvent(new Event("input", { bubbles: true }));
    }
    setTimeout(() => toast("You were signed out and back in: what you had typed is still here. Check it and send it again."), 0);
  }
  // After the page's own scripts have drawn their forms (and filled their selects).
  window.addEventListener("load", () => setTimeout(restoreTyped, 300));

  /** GET that throws the problem, for loaders that show one error for the whole panel. */
  async function get(path) {
    const r = await api("GET", path);
    if (!r.ok) throw r.data || { detail: "HTTP " + r.status };
    return r.data;
  }

  /** Every item of a paged list (follows next_cursor up to `max` items). */
  async function getAll(path, max = 5000) {
    const items = [];
    let cursor = null;
    do {
      const sep = path.includes("?") ? "&" : "?";
      const page = await get(path + sep + "limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < max);
    return items;
  }

  const currencyCache = new Map();
  /** The currency's public record ({code, scale, ...}), fetched once per page. */
  function currency(code) {
    if (!currencyCache.has(code)) {
      currencyCache.set(code, get("/api/v1/currencies/" + encodeURIComponent(code)).catch((e) => {
        currencyCache.delete(code);
        throw e;
      }));
    }
    return currencyCache.get(code);
  }

  /** Builds an element: el("td", {class: "x"}, "text", child). Text is never parsed as HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function rows(tbody, items, render, empty) {
    tbody.replaceChildren(...(items.length ? items.map(render) : [el("tr", {}, el("td", { colspan: String(tbody.closest("table").querySelectorAll("thead th").length), class: "muted" }, empty || "Nothing yet."))]));
  }

  function clearErrors(form) {
    for (const p of form.querySelectorAll(".error")) { p.hidden = true; p.textContent = ""; }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  /** Puts the API's message next to the field it names (problem.field) or its code is about,
   *  else under the form. */
  function showProblem(form, problem, fallbackField) {
    const code = (problem && problem.code) || "";
    const message = (problem && (problem.detail || problem.title)) || "Something went wrong.";
    const named = problem && problem.field ? form.querySelector(`[name="${CSS.escape(problem.field)}"]`) : null;
    let input = named && named.closest(".field") ? named : form.querySelector(`[data-errors~="${CSS.escape(code)}"]`);
    if (!input && fallbackField) input = form.querySelector(`[name="${fallbackField}"]`);
    const slot = input ? input.closest(".field").querySelector(".error") : form.querySelector(".form-error");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const id = input.id + "-error";
      slot.id = id;
      input.setAttribute("aria-describedby", id);
      input.focus();
    }
    if (slot) { slot.textContent = message; slot.hidden = false; }
    else toast(message);
  }

  /** The form's named fields as an object; empty optional fields are left out. */
  function formData(form) {
    const out = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      if (field.type === "radio" && !field.checked) continue;
      if (field.type === "checkbox") { out[field.name] = field.checked; continue; }
      const value = field.value.trim();
      if (value !== "") out[field.name] = value;
    }
    return out;
  }

  /** Runs `submit(data)` for a form: clears old errors, disables the button meanwhile. */
  function onSubmit(form, submit) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      try { await submit(formData(form)); }
      // A form its page locked meanwhile (a paid request) stays locked.
      finally { if (button && form.dataset.locked !== "1") button.disabled = false; }
    });
  }

  /** A guarded action that became a proposal (202: the business's approval rule asks more
   *  owners to agree): says so, tells the page, and answers true. */
  function proposed(r) {
    if (r.status !== 202 || !r.data || !r.data.proposal) return false;
    const p = r.data.proposal;
    const more = p.required - p.approvals.length;
    toast(`Waiting for approval: “${p.summary}” runs when ${more} more owner${more === 1 ? "" : "s"} approve${more === 1 ? "s" : ""}.`);
    document.dispatchEvent(new CustomEvent("scrip:proposed", { detail: p }));
    return true;
  }

  let toastTimer = null;
  function toast(message) {
    const node = document.getElementById("toast");
    node.textContent = message;
    node.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => node.classList.remove("show"), 4000);
  }

  function when(rfc3339) {
    const d = new Date(rfc3339);
    return isNaN(d) ? rfc3339 : d.toLocaleString();
  }
  function time(rfc3339) {
    const d = new Date(rfc3339);
    return isNaN(d) ? rfc3339 : d.toLocaleTimeString();
  }

  /** A fresh Idempotency-Key: retries of one submission never pay twice. */
  function idempotencyKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Runs `fn` at most once per `ms`, and always once more after the last call: on a busy
   *  market it keeps refreshing instead of waiting for a quiet moment that never comes. */
  function throttle(fn, ms) {
    let last = 0, timer = null;
    return () => {
      const wait = last + ms - Date.now();
      if (wait <= 0) { last = Date.now(); fn(); return; }
      if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
    };
  }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // The signed-in user's own events (payments received, requests paid, orders filled or
  // ended), one WebSocket per page shared by every listener, reconnected after a drop. Events
  // say "look again", never what to show: a listener re-reads what it displays.
  const listeners = [];
  let socket = null;
  function openStream(delayMs) {
    socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/v1/me/stream");
    socket.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      for (const listener of listeners) listener(event);
    };
    socket.onopen = () => { delayMs = 1000; };
    socket.onclose = () => {
      // Its access cookie may have run out: refresh it first, then reconnect, backing off.
      setTimeout(() => { refreshSession().then(() => openStream(Math.min(delayMs * 2, 30000))); }, delayMs);
    };
  }
  /** Calls `listener(event)` for each of the user's events (and `lagged`, `hello`); returns
   *  the function that stops it. */
  function onEvent(listener) {
    listeners.push(listener);
    if (!socket && me) openStream(1000);
    return () => { const at = listeners.indexOf(listener); if (at >= 0) listeners.splice(at, 1); };
  }

  /** Shows a payment request at a till: its QR code, link and status, kept live (the event
   *  stream says when it was paid; a slow poll covers a stream that dropped). Calls
   *  `onPaid(request)` once when it is paid. Returns a function that stops following it. */
  function showRequest(request, { qr, link, status }, onPaid) {
    qr.src = "/qr.svg?text=" + encodeURIComponent(request.url);
    link.href = request.url;
    link.textContent = request.url;
    let done = false;
    const render = (r) => {
      if (done) return;
      status.classList.toggle("paid", r.status === "paid");
      // A code that can no longer be paid is not shown to the next customer.
      qr.hidden = r.status !== "open";
      if (r.status === "paid") {
        stop();
        status.textContent = `Paid${r.paid_by ? " by " + r.paid_by : ""}: ${Dec.pretty(r.amount)} ${r.currency}`;
        onPaid(r);
      } else if (r.status === "expired") {
        stop();
        status.textContent = "Expired unpaid. Make a new request.";
      } else {
        status.textContent = `Waiting for ${Dec.pretty(r.amount)} ${r.currency}${r.memo ? ` (“${r.memo}”)` : ""}…`;
      }
    };
    const check = async () => {
      const r = await api("GET", "/api/v1/payment-requests/" + encodeURIComponent(request.id));
      if (r.ok) render(r.data);
    };
    const stopListening = onEvent((event) => {
      if ((event.type === "payment_request_paid" && event.request_id === request.id) || event.type === "lagged") check();
    });
    const poll = setInterval(() => { if (!document.hidden) check(); }, 5000);
    const stop = () => { done = true; clearInterval(poll); stopListening(); };
    render(request);
    return stop;
  }

  /** "an owner", "a worker": a noun with its indefinite article. */
  function article(noun) {
    return (/^[aeiou]/i.test(noun) ? "an " : "a ") + noun;
  }

  return { me, api, get, getAll, Dec, currency, el, svg, rows, clearErrors, showProblem, formData, onSubmit, toast, proposed, when, time, idempotencyKey, throttle, download, article, onEvent, showRequest };
})();
