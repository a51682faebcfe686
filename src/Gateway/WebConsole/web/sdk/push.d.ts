// The page imports the browser client as the gateway serves it (../sdk/push.js from /console/): this gives that
// address the client's own type declarations, from its build in src/Sdk/js.
export * from "../../../../Sdk/js/dist/push.js";
