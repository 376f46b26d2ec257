// The storefront's only script. Every page works without it; with it:
// - a form marked `data-once` cannot be sent twice (a double click places one order; the
//   server's idempotency key covers what gets past this, a refresh or a second tab);
// - an order page whose status is still changing follows it live, without reloading.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
  if (form.dataset.sent === "true") {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "true";
  // Disabled after this turn, so the button's own value still goes with the form.
  setTimeout(() => {
    for (const button of form.querySelectorAll("button")) button.disabled = true;
  }, 0);
});

async function followOrder(element) {
  const id = element.dataset.orderId;
  let failures = 0;
  while (element.dataset.live === "true") {
    try {
      const response = await fetch(`/orders/${id}/status?wait=5`, {
        headers: { accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`status ${response.status}`);
      const order = await response.json();
      failures = 0;
      if (order.status !== element.dataset.status) {
        element.dataset.status = order.status;
        element.textContent = order.status_words;
        element.className = `status status-${order.status.toLowerCase()}`;
      }
      if (!order.in_progress) {
        // Settled: the page's other parts (refund, reason, cancel button) come with a reload.
        element.dataset.live = "false";
        window.location.reload();
        return;
      }
    } catch (error) {
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 1000 * failures)));
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("order-status");
  if (status && status.dataset.live === "true") followOrder(status);
});
