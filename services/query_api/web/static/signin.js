// What follows '#' in a page's address (the customer open in the console, the dashboard's
// period) never reaches the server, so a redirect to sign in loses it from `next`; the browser
// keeps it in this page's address, and the form and the language links take it along (a
// browser review: a customer link opened signed out landed on an empty console).
(() => {
  const hash = window.location.hash;
  if (!hash) return;
  const next = document.querySelector('form input[name="next"]');
  if (next && !next.value.includes("#")) next.value += hash;
  for (const link of document.querySelectorAll("nav.languages a")) {
    link.href = link.href.split("#")[0] + hash;
  }
})();
