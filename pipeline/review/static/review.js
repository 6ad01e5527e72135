// Progressive enhancement for the review pages: keyboard shortcuts and in-place
// updates. Every action also works without this file (plain forms that POST).
(() => {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const cards = Array.from(document.querySelectorAll("article.flag"));
  const progress = document.getElementById("progress");
  const reviewerInput = document.getElementById("reviewer");
  let current = -1;
  let typing = null; // the card waiting for a digit after "t"

  async function post(url, params) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      body: params,
    });
    const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  function select(index, { scroll = true } = {}) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach((card, i) => card.classList.toggle("current", i === current));
    const card = cards[current];
    card.focus({ preventScroll: true });
    if (scroll) card.scrollIntoView({ block: "nearest" });
    history.replaceState(null, "", `#${card.id}`);
  }

  function advance() {
    const next = cards.findIndex((card, i) => i > current && !card.classList.contains("reviewed"));
    select(next >= 0 ? next : current + 1);
  }

  function showError(card, message) {
    const box = card.querySelector(".error");
    box.textContent = message; // textContent: never parsed as HTML
    box.hidden = !message;
  }

  function apply(card, data) {
    card.classList.toggle("reviewed", Boolean(data.review));
    card.querySelector("[data-status]").textContent = data.text;
    card.querySelector("form.undo").hidden = !data.review;
    if (progress && data.progress) {
      progress.textContent = `${data.progress.reviewed} / ${data.progress.total}`;
      progress.dataset.reviewed = data.progress.reviewed;
    }
    showError(card, "");
  }

  function reviewerParams() {
    const params = new URLSearchParams();
    const name = reviewerInput?.value.trim();
    if (name) params.set("reviewer", name);
    return params;
  }

  async function label(card, decision, type) {
    const form = card.querySelector("form.actions");
    const params = reviewerParams();
    params.set("decision", decision);
    if (type) params.set("type", type);
    try {
      apply(card, await post(form.action, params));
      advance();
    } catch (err) {
      showError(card, err.message);
    }
  }

  async function undo(card) {
    const form = card.querySelector("form.undo");
    if (form.hidden) return;
    try {
      apply(card, await post(form.action, reviewerParams()));
    } catch (err) {
      showError(card, err.message);
    }
  }

  function startTyping(card) {
    const hint = card.querySelector(".type-hint");
    if (!hint) {
      showError(card, "This flag has one claim: its type cannot change (accept or reject it).");
      return;
    }
    typing = card;
    hint.hidden = false;
  }

  function stopTyping() {
    if (typing) typing.querySelector(".type-hint").hidden = true;
    typing = null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing) {
      const options = typing.querySelectorAll("select[name=type] option");
      const n = Number.parseInt(event.key, 10);
      if (event.key === "Escape") {
        stopTyping();
      } else if (n >= 1 && n <= options.length) {
        const card = typing;
        stopTyping();
        label(card, "correct", options[n - 1].value);
      } else {
        return;
      }
      event.preventDefault();
      return;
    }
    const target = event.target;
    if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName))) {
      return;
    }
    const card = cards[current];
    const has = (decision) => card?.querySelector(`form.actions button[value="${decision}"]`);
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "a": if (card) label(card, "accept"); break;
      case "r": if (card) label(card, "reject"); break;
      case "n": if (card && has("unrelated")) label(card, "unrelated"); break;
      case "t": if (card) startTyping(card); break;
      case "u": if (card) undo(card); break;
      case "m": document.querySelector("#missed select")?.focus(); break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const card = form.closest("article.flag");
    if (card && form.matches("form.actions")) {
      event.preventDefault();
      select(cards.indexOf(card), { scroll: false });
      const decision = event.submitter?.value || "accept";
      const type = decision === "correct" ? form.querySelector("select[name=type]")?.value : null;
      label(card, decision, type);
    } else if (card && form.matches("form.undo")) {
      event.preventDefault();
      undo(card);
    } else if (form.matches("form.reviewer")) {
      event.preventDefault();
      const saved = form.querySelector(".saved");
      post(form.action, reviewerParams())
        .then(() => { saved.textContent = "saved"; saved.hidden = false; })
        .catch((err) => { saved.textContent = err.message; saved.hidden = false; });
    }
  });

  cards.forEach((card, i) => card.addEventListener("click", () => { if (current !== i) select(i, { scroll: false }); }));

  const fromHash = cards.findIndex((card) => `#${card.id}` === location.hash);
  const firstOpen = cards.findIndex((card) => !card.classList.contains("reviewed"));
  if (cards.length) select(fromHash >= 0 ? fromHash : Math.max(0, firstOpen), { scroll: fromHash >= 0 });
})();
