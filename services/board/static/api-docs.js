// The API reference page (/api/docs): Swagger UI over the board's own OpenAPI document. "Try it out" sends
// requests from this page with the session's cookie; writes still need the X-CSRF-Token header.
"use strict";

window.lbApiDocs = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  validatorUrl: null, // never call out to the public validator
  onComplete: () => { document.body.dataset.apiDocs = "ready"; },
});
