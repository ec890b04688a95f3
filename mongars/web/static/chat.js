// monGARS chat: live streaming over the WebSocket (/ws/chat), on top of a page that
// works without JavaScript (the composer is a plain form that the server answers).
//
// Answers keep running on the server when the page goes away: on (re)connect the
// server's snapshot lists answers still running, and we resume them from the start
// (or from the last event we applied), so a reload mid-answer shows the answer complete.
(() => {
  "use strict";
  const $ = (selector) => document.querySelector(selector);
  const csrf = $('meta[name="csrf-token"]').content;
  const log = $("#log");
  const form = $("#composer");
  const textarea = $("#message");
  const sendButton = $("#send");
  const cancelButton = $("#cancel");
  const statusEl = $("#status");
  const errorEl = $("#chat-error");
  const threadInput = $("#thread-id");
  if (!log || !form || !window.markdownit || !window.DOMPurify) return;

  const md = window.markdownit({ html: false, linkify: false, breaks: true });
  window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") node.setAttribute("rel", "noopener noreferrer nofollow");
  });
  const toHtml = (text) =>
    window.DOMPurify.sanitize(md.render(text), {
      FORBID_TAGS: ["img", "style", "form", "input", "button", "iframe", "svg", "math"],
      FORBID_ATTR: ["style"],
    });

  let threadId = threadInput.value || null;
  let ws = null;
  let current = null; // the answer being streamed: {gen, clientId, el, text, lastIndex}
  let retries = 0;
  let renderQueued = false;

  const newId = () =>
    (window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 120;
  const scrollDown = () => { log.scrollTop = log.scrollHeight; };

  function setStatus(text) { statusEl.textContent = text; }
  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  }

  function busy(on) {
    cancelButton.hidden = !on;
    sendButton.disabled = on;
    document.body.classList.toggle("generating", on);
    document.querySelectorAll(".regen button").forEach((b) => { b.disabled = on; });
  }

  function article(kind, text) {
    const empty = $("#empty");
    if (empty) empty.remove();
    const el = document.createElement("article");
    el.className = `msg ${kind}`;
    el.setAttribute("aria-label", kind === "user" ? "You" : "monGARS");
    const body = document.createElement("div");
    body.className = "body md";
    body.innerHTML = toHtml(text);
    el.appendChild(body);
    if (kind === "assistant") {
      el.dataset.raw = text;
      const tools = document.createElement("footer");
      tools.className = "tools";
      const copy = document.createElement("button");
      copy.type = "button";
      copy.className = "copy";
      copy.textContent = "Copy";
      tools.appendChild(copy);
      el.appendChild(tools);
    }
    const stick = nearBottom();
    log.appendChild(el);
    if (stick) scrollDown();
    return el;
  }

  // The documents an answer cites (the same markup as the server's _sources.html).
  const httpUrl = (value) => {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  };
  const span = (className, text) => {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  };

  function showSources(el, citations) {
    const old = el.querySelector(".sources");
    if (old) old.remove();
    if (!Array.isArray(citations) || !citations.length) return;
    const box = document.createElement("div");
    box.className = "sources";
    const heading = document.createElement("p");
    heading.className = "sources-title";
    heading.textContent = "Sources";
    const list = document.createElement("ol");
    for (const c of citations) {
      const item = document.createElement("li");
      item.className = "source";
      const n = Number(c.n) || list.children.length + 1;
      item.value = n;
      if (c.excerpt) item.title = String(c.excerpt);
      const name = String(c.title || c.path || "");
      const url = httpUrl(c.url);
      let title;
      if (url) {
        title = document.createElement("a");
        title.className = "src-title";
        title.href = url;
        title.rel = "noopener noreferrer nofollow";
        title.textContent = name;
      } else {
        title = span("src-title", name);
      }
      item.append(span("src-n", `[${n}]`), " ", title, " — ", span("src-path", String(c.path || "")));
      if (c.page) item.append(`, p. ${Number(c.page) || ""}`);
      if (c.excerpt) {
        const details = document.createElement("details");
        details.className = "src-excerpt";
        const summary = document.createElement("summary");
        summary.textContent = "Excerpt";
        details.appendChild(summary);
        if (c.section) {
          const section = document.createElement("p");
          section.className = "muted";
          section.textContent = String(c.section);
          details.appendChild(section);
        }
        const quote = document.createElement("blockquote");
        quote.textContent = String(c.excerpt);
        details.appendChild(quote);
        item.append(" ", details);
      }
      list.appendChild(item);
    }
    box.append(heading, list);
    const tools = el.querySelector(".tools");
    if (tools) el.insertBefore(box, tools);
    else el.appendChild(box);
  }

  function paint() {
    renderQueued = false;
    if (!current) return;
    const stick = nearBottom();
    current.el.querySelector(".body").innerHTML = toHtml(current.text);
    current.el.dataset.raw = current.text;
    if (stick) scrollDown();
  }
  function schedulePaint() {
    if (!renderQueued) {
      renderQueued = true;
      window.requestAnimationFrame(paint);
    }
  }

  function finish(final) {
    if (!current) return;
    if (final !== undefined) current.text = final;
    paint();
    current.el.classList.remove("streaming");
    current.el.setAttribute("aria-busy", "false");
    if (current.gen) sessionStorage.removeItem(`mongars:pending:${current.gen}`);
    current = null;
    busy(false);
    setStatus("");
    moveRegenerate();
  }

  // Only the last answer of a thread can be regenerated: keep the button there.
  function moveRegenerate() {
    const regen = document.querySelector(".regen");
    const answers = log.querySelectorAll("article.assistant");
    const last = answers[answers.length - 1];
    if (!last || !threadId) return;
    let target = regen;
    if (!target) {
      target = document.createElement("form");
      target.className = "inline regen";
      target.method = "post";
      target.action = `/chat/${encodeURIComponent(threadId)}/regenerate`;
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = csrf;
      const button = document.createElement("button");
      button.type = "submit";
      button.textContent = "Regenerate";
      target.append(token, button);
    }
    last.querySelector(".tools").appendChild(target);
  }

  function startAnswer(el, clientId, gen) {
    current = { gen: gen || null, clientId, el, text: "", lastIndex: -1 };
    el.classList.add("streaming");
    el.setAttribute("aria-busy", "true");
    busy(true);
    setStatus("monGARS is answering…");
  }

  function adoptThread(id) {
    if (!id || threadId === id) return;
    threadId = id;
    threadInput.value = id;
    window.history.replaceState(null, "", `/chat/${encodeURIComponent(id)}`);
    addToSidebar(id, current && current.query);
  }

  // A thread made by this page goes to the top of the sidebar at once.
  function addToSidebar(id, query) {
    const list = $("#threads");
    const href = `/chat/${encodeURIComponent(id)}`;
    if (!list || list.querySelector(`a[href="${href}"]`)) return;
    const empty = list.querySelector("li.muted");
    if (empty) empty.remove();
    list.querySelectorAll("a[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = href;
    link.setAttribute("aria-current", "page");
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = (query || "New chat").trim().split("\n")[0].slice(0, 80);
    link.appendChild(title);
    item.appendChild(link);
    list.prepend(item);
  }

  function send(message) {
    const clientId = newId();
    article("user", message);
    const el = article("assistant", "");
    startAnswer(el, clientId);
    current.query = message;
    const frame = { type: "chat.send", message, client_id: clientId };
    if (threadId) frame.thread_id = threadId;
    ws.send(JSON.stringify(frame));
  }

  function regenerate() {
    const answers = log.querySelectorAll("article.assistant");
    const last = answers[answers.length - 1];
    if (!last || !threadId) return;
    last.querySelector(".body").innerHTML = "";
    showSources(last, []);
    last.classList.remove("cancelled");
    const badge = last.querySelector(".badge");
    if (badge) badge.remove();
    const clientId = newId();
    startAnswer(last, clientId);
    ws.send(JSON.stringify({ type: "chat.regenerate", thread_id: threadId, client_id: clientId }));
  }

  function resume(gen, fromIndex, thread) {
    if (current && current.gen === gen) {
      ws.send(JSON.stringify({ type: "chat.resume", generation_id: gen, last_index: current.lastIndex }));
      return;
    }
    if (current || thread !== threadId) return;
    const query = sessionStorage.getItem(`mongars:pending:${gen}`);
    if (query !== null) article("user", query);
    startAnswer(article("assistant", ""), null, gen);
    current.lastIndex = fromIndex;
    ws.send(JSON.stringify({ type: "chat.resume", generation_id: gen, last_index: fromIndex }));
  }

  function onSnapshot(ev) {
    if (threadId && ev.thread_id === threadId && !current) {
      // Answers that finished between the page load and this snapshot.
      const shown = [...log.querySelectorAll("article.assistant[data-turn]")].map((a) => Number(a.dataset.turn));
      const lastShown = shown.length ? Math.max(...shown) : 0;
      for (const m of ev.messages) {
        if (m.turn_id > lastShown && m.status !== "superseded") {
          article("user", m.query);
          const answer = article("assistant", m.response);
          answer.dataset.turn = m.turn_id;
          showSources(answer, m.citations);
        }
      }
    }
    for (const running of ev.running || []) resume(running.generation_id, -1, running.thread_id);
    moveRegenerate();
  }

  function mine(ev) {
    if (!current) return false;
    if (current.gen) return ev.generation_id === current.gen;
    if (ev.type === "chat.started" && ev.client_id && ev.client_id === current.clientId) {
      current.gen = ev.generation_id;
      return true;
    }
    return false;
  }

  function onEvent(ev) {
    switch (ev.type) {
      case "ping":
        ws.send(JSON.stringify({ type: "pong" }));
        return;
      case "history.snapshot":
        onSnapshot(ev);
        return;
      case "ack":
        if (!current || ev.ref !== current.clientId) return;
        if (!ev.ok) {
          showError(ev.error ? ev.error.detail : "The message was refused.");
          if (!current.gen && current.query !== undefined) {
            current.el.previousElementSibling.remove();
            current.el.remove();
            textarea.value = current.query;
          }
          current = null;
          busy(false);
          setStatus("");
          return;
        }
        current.gen = ev.generation_id;
        adoptThread(ev.thread_id);
        if (current.query !== undefined) {
          sessionStorage.setItem(`mongars:pending:${ev.generation_id}`, current.query);
        }
        return;
      case "error":
        showError(ev.detail);
        return;
      default:
        break;
    }
    if (!ev.generation_id) return;
    if (!mine(ev)) {
      // Another tab started an answer in this thread: follow it too.
      if (!current && ev.type === "chat.started" && ev.thread_id === threadId && !ev.regenerate) {
        startAnswer(article("assistant", ""), null, ev.generation_id);
      }
      return;
    }
    if (ev.index <= current.lastIndex) return; // already applied (after a resume)
    current.lastIndex = ev.index;
    if (ev.thread_id) adoptThread(ev.thread_id);
    if (ev.type === "chat.delta") {
      current.text += ev.text;
      schedulePaint();
    } else if (ev.type === "chat.completed") {
      current.el.dataset.turn = ev.turn_id;
      showSources(current.el, ev.citations);
      finish(ev.text);
    } else if (ev.type === "chat.cancelled") {
      current.el.classList.add("cancelled");
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "stopped";
      current.el.querySelector(".tools").prepend(badge);
      finish(ev.text);
    } else if (ev.type === "chat.error") {
      showError(`${ev.detail} (${ev.code})`);
      const el = current.el;
      finish();
      if (!el.dataset.raw) el.remove();
    }
  }

  async function connect() {
    try {
      const response = await fetch("/chat/ticket", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
      });
      if (response.status === 401 || response.redirected) {
        window.location.assign("/login");
        return;
      }
      if (!response.ok) throw new Error(`ticket: HTTP ${response.status}`);
      const { ticket } = await response.json();
      const params = new URLSearchParams({ t: ticket });
      if (threadId) params.set("thread_id", threadId);
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${window.location.host}/ws/chat?${params}`);
      socket.addEventListener("open", () => {
        ws = socket;
        retries = 0;
        document.body.dataset.live = "true";
        if (!current) setStatus("");
      });
      socket.addEventListener("message", (msg) => onEvent(JSON.parse(msg.data)));
      socket.addEventListener("close", () => {
        if (ws === socket) ws = null;
        document.body.dataset.live = "false";
        reconnectLater();
      });
    } catch (err) {
      reconnectLater();
    }
  }

  function reconnectLater() {
    retries += 1;
    const delay = Math.min(10000, 500 * 2 ** Math.min(retries, 5));
    setStatus(current ? "Connection lost; the answer continues on the server. Reconnecting…" : "Offline; reconnecting…");
    window.setTimeout(connect, delay);
  }

  // -- controls ----------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // the plain form post still works
    event.preventDefault();
    if (current) return;
    const message = textarea.value;
    if (!message.trim()) {
      showError("Type a message first.");
      return;
    }
    showError("");
    textarea.value = "";
    send(message);
  });

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (!current) form.requestSubmit();
    }
  });

  function cancel() {
    if (current && current.gen && ws) {
      ws.send(JSON.stringify({ type: "chat.cancel", generation_id: current.gen }));
      setStatus("Stopping…");
    }
  }
  cancelButton.addEventListener("click", cancel);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && current) cancel();
  });

  document.addEventListener("submit", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLFormElement) || !target.classList.contains("regen")) return;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    event.preventDefault();
    if (!current) regenerate();
  });

  log.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const text = button.closest("article").dataset.raw || "";
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    window.setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });

  document.querySelectorAll("button.copy[hidden]").forEach((b) => { b.hidden = false; });
  scrollDown();
  connect();
})();
