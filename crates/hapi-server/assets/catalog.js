// The catalog's search: hides the datasets whose id, title and description (the
// `data-search` text the server lower-cased) do not contain every typed word.
const input = document.getElementById('search');
const list = document.getElementById('catalog');
const count = document.getElementById('search-count');
if (input && list) {
  const items = [...list.querySelectorAll('li')];
  const filter = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const li of items) {
      const hit = words.every((w) => li.dataset.search.includes(w));
      li.hidden = !hit;
      if (hit) shown++;
    }
    count.textContent = words.length ? `${shown} of ${items.length} datasets` : '';
  };
  input.addEventListener('input', filter);
  // The form only filters; it never leaves the page.
  document.getElementById('search-form').addEventListener('submit', (e) => e.preventDefault());
  filter();
}
