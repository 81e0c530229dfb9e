// Links to a project's pages (data-project-link) carry the page's own ?p=<project>, so a
// project's tabs work on any page that shows them, before (or without) its script.
const slug = new URLSearchParams(location.search).get("p");
if (slug) {
  for (const link of document.querySelectorAll("a[data-project-link]")) {
    const base = link.getAttribute("href").split("?")[0];
    link.setAttribute("href", `${base}?p=${encodeURIComponent(slug)}`);
  }
}
