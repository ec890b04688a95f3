// monGARS chat: feedback on answers. Thumbs up / down (clicking the pressed one removes
// the rating) and "suggest a better answer", posted in place. The server renders the
// same controls (plain forms) for stored answers; answers that arrive live get them
// here once they have a turn id (chat.js sets data-turn when an answer is stored).
(() => {
  "use strict";
  const log = document.querySelector("#log");
  const meta = document.querySelector('meta[name="csrf-token"]');
  const limit = document.querySelector("#message");
  if (!log || !meta) return;
  const csrf = meta.content;
  const maxChars = limit ? limit.maxLength : -1;
  const THUMBS = [
    ["up", "Good answer", "👍"],
    ["down", "Bad answer", "👎"],
  ];

  function hidden(name, value) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function form(turn, className) {
    const el = document.createElement("form");
    el.method = "post";
    el.action = `/chat/turns/${turn}/feedback`;
    el.className = className;
    el.append(hidden("csrf_token", csrf), hidden("back", `${window.location.pathname}#feedback-${turn}`));
    return el;
  }

  // The same markup as templates/_feedback.html.
  function build(turn) {
    const box = document.createElement("div");
    box.className = "feedback";
    box.id = `feedback-${turn}`;
    box.dataset.turn = turn;
    const rate = form(turn, "inline rate");
    for (const [value, label, icon] of THUMBS) {
      const button = document.createElement("button");
      button.type = "submit";
      button.name = "rating";
      button.className = "thumb";
      button.dataset.rating = value;
      button.setAttribute("aria-label", label);
      button.title = label;
      button.textContent = icon;
      rate.appendChild(button);
    }
    const details = document.createElement("details");
    details.className = "suggest";
    const summary = document.createElement("summary");
    const suggest = form(turn, "stack");
    const label = document.createElement("label");
    label.htmlFor = `correction-${turn}`;
    label.textContent = "A better answer (saved with this turn; leave empty to remove it)";
    const area = document.createElement("textarea");
    area.id = `correction-${turn}`;
    area.name = "correction";
    area.rows = 4;
    if (maxChars > 0) area.maxLength = maxChars;
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    suggest.append(label, area, save);
    details.append(summary, suggest);
    const status = document.createElement("span");
    status.className = "feedback-status muted";
    status.setAttribute("role", "status");
    box.append(rate, details, status);
    show(box, null);
    return box;
  }

  // Show the state {rating, correction} (or null: no feedback) in the controls.
  function show(box, state) {
    const rating = state ? state.rating : null;
    const correction = (state && state.correction) || "";
    box.querySelectorAll("button.thumb").forEach((button) => {
      const on = button.dataset.rating === rating;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.value = on ? "none" : button.dataset.rating;
    });
    box.querySelector(".suggest summary").textContent = correction
      ? "Your better answer ✓"
      : "Suggest a better answer";
    box.querySelector("textarea").value = correction;
  }

  // Give every stored answer its controls (a regenerated answer is a new turn).
  function equip(article) {
    const turn = article.dataset.turn;
    if (!turn || !/^\d+$/.test(turn)) return;
    const tools = article.querySelector(".tools");
    if (!tools) return;
    const old = tools.querySelector(".feedback");
    if (old && old.dataset.turn === turn) return;
    const box = build(turn);
    if (old) old.replaceWith(box);
    else tools.insertBefore(box, tools.querySelector(".regen"));
  }
  const equipAll = () => log.querySelectorAll("article.assistant[data-turn]").forEach(equip);
  new MutationObserver(equipAll).observe(log, { childList: true });
  new MutationObserver((records) => {
    for (const r of records) if (r.target.matches && r.target.matches("article.assistant")) equip(r.target);
  }).observe(log, { attributes: true, attributeFilter: ["data-turn"], subtree: true });

  async function post(target, submitter) {
    const box = target.closest(".feedback");
    const status = box.querySelector(".feedback-status");
    const body = new URLSearchParams(new FormData(target));
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    status.textContent = "Saving…";
    try {
      const response = await fetch(target.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body,
      });
      if (response.status === 401 || response.redirected) {
        window.location.assign("/login");
        return;
      }
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        status.textContent = data.detail || `Not saved (HTTP ${response.status}).`;
        return;
      }
      show(box, data.feedback);
      const details = box.querySelector("details");
      if (target.closest("details")) details.open = false;
      status.textContent = data.feedback ? "Saved." : "Removed.";
      window.setTimeout(() => { if (status.textContent !== "Saving…") status.textContent = ""; }, 2500);
    } catch (err) {
      status.textContent = "Not saved: the server could not be reached.";
    }
  }

  log.addEventListener("submit", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLFormElement) || !target.closest(".feedback")) return;
    event.preventDefault();
    post(target, event.submitter);
  });

  equipAll();
})();
