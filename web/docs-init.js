// Starts Swagger UI on the Open Terminal API explorer page (/docs): the page names its OpenAPI
// document in <body data-openapi="…">, so one static script serves every server's mount.
/* global SwaggerUIBundle */
window.addEventListener("DOMContentLoaded", () => {
  SwaggerUIBundle({ url: document.body.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true });
});
