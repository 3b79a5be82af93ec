// The forge's admin page: confirm "Generate a new secret", copy the webhook URL, fetch and copy
// the secret (templates/console/forge/change_form.html). A static file: the
// Content-Security-Policy allows no inline script.
(() => {
  const say = (button, words) => {
    const status = button.parentElement.querySelector(".baton-copy-status");
    if (status) status.textContent = words;
  };
  const copy = async (button, field) => {
    const text = field.value !== undefined ? field.value : field.textContent;
    try {
      await navigator.clipboard.writeText(text);
      say(button, "Copied.");
    } catch (error) {
      if (field.select) field.select();
      else window.getSelection().selectAllChildren(field);
      say(button, "Selected: press Ctrl+C (⌘C) to copy.");
    }
  };
  document.addEventListener("submit", (event) => {
    const words = event.target.dataset.batonConfirm;
    if (words && !window.confirm(words)) event.preventDefault();
  });
  document.addEventListener("click", async (event) => {
    const copier = event.target.closest("[data-baton-copy]");
    if (copier) {
      await copy(copier, document.getElementById(copier.dataset.batonCopy));
      return;
    }
    const revealer = event.target.closest("[data-baton-reveal]");
    if (!revealer) return;
    const field = document.getElementById(revealer.dataset.batonTarget);
    if (!field.value) {
      const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
      const answer = await fetch(revealer.dataset.batonReveal, {
        method: "POST", headers: {"X-CSRFToken": token}, credentials: "same-origin", cache: "no-store",
      });
      if (!answer.ok) { say(revealer, `Could not fetch it (${answer.status}).`); return; }
      field.value = (await answer.json()).secret;
      revealer.textContent = "Copy";
    }
    await copy(revealer, field);
  });
})();
