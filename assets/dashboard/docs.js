// Swagger UI over the served OpenAPI document ("Try it out" calls this origin's API).
"use strict";
window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true, tryItOutEnabled: true });
