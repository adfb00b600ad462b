// Starts Swagger UI on /docs. A static file, not an inline script: the content-security policy
// of every page forbids inline scripts (kernel/web_security.py).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
