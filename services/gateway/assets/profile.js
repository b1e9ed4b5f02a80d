// A public profile: who it is, its reputation from paid deals, the latest ratings, and what it
// lists now.
import { Scrip } from "/assets/app.js";
import { listingItem, reputationWords } from "/assets/listings.js";
(() => {
  const { get, el, when } = Scrip;
  const handle = document.getElementById("profile-handle").dataset.handle;
  (async () => {
    let p;
    try { p = await get("/api/v1/principals/" + encodeURIComponent(handle)); } catch (problem) {
      const error = document.getElementById("profile-error");
      error.textContent = problem.detail || `There is no one named ${handle}.`;
      error.hidden = false;
      document.querySelector(".market-grid").hidden = true;
      return;
    }
    document.getElementById("profile-name").textContent = p.display_name || "";
    document.getElementById("profile-since").textContent = `${p.kind === "business" ? "business" : "member"} since ${new Date(p.member_since).toLocaleDateString()}`;
    document.getElementById("profile-reputation").textContent = reputationWords(p.reputation);
    document.getElementById("ratings").replaceChildren(...p.ratings.map((r) => el("li", {},
      el("span", { class: "stars", "aria-label": `${r.rating} of 5` }, "★".repeat(r.rating) + "☆".repeat(5 - r.rating)),
      ` ${r.from}`, r.comment ? el("span", { class: "line" }, `“${r.comment}”`) : "",
      el("small", {}, when(r.created_at)))));
    document.getElementById("profile-listings").replaceChildren(...(p.listings.length ? p.listings.map(listingItem)
      : [el("li", { class: "muted" }, "Nothing listed now.")]));
  })();
})();
