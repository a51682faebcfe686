// Validates rendered manifests against the Kubernetes schemas (kubernetes-models; the Prometheus Operator's for the
// ServiceMonitor) and merged chart values against the chart's values.schema.json (JSON Schema draft-07, as Helm checks
// it), plus what `helm lint` and the API server would refuse: missing or over-long names, duplicate objects.
//
//   node validate.mjs --schema ../pushservice/values.schema.json --values merged.json manifests.yaml
//   node validate.mjs --schema ../pushservice/values.schema.json --values-only merged.json   (exit 1 when invalid)
//
// Prints one line per object; exits 1 with the reasons when anything is invalid.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import Ajv from "ajv";

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [value] = args.splice(i, 2).slice(1);
  return value;
};
const schemaFile = option("--schema");
const valuesFile = option("--values");
const valuesOnly = option("--values-only");
const failures = [];

if (schemaFile && (valuesFile || valuesOnly)) {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(schemaFile, "utf8")));
  const values = JSON.parse(readFileSync(valuesFile ?? valuesOnly, "utf8"));
  if (!validate(values)) {
    for (const error of validate.errors) {
      failures.push(`values${error.instancePath.replaceAll("/", ".")}: ${error.message}${error.params?.additionalProperty ? ` (${error.params.additionalProperty})` : ""}`);
    }
  } else {
    console.log("values: valid against values.schema.json");
  }
}

if (!valuesOnly) {
  const [manifestFile] = args;
  if (!manifestFile) {
    console.error("usage: node validate.mjs [--schema s --values v] manifests.yaml");
    process.exit(2);
  }

  const seen = new Set();
  for (const document of parseAllDocuments(readFileSync(manifestFile, "utf8"))) {
    if (document.errors.length > 0) {
      failures.push(`YAML: ${document.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const object = document.toJS();
    if (object == null) continue;
    const { apiVersion, kind, metadata } = object;
    const where = `${kind ?? "?"} ${metadata?.name ?? "?"}`;
    if (!apiVersion || !kind || !metadata?.name) {
      failures.push(`${where}: apiVersion, kind and metadata.name are required`);
      continue;
    }
    if (metadata.name.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(metadata.name)) {
      failures.push(`${where}: the name is not a DNS label of at most 63 characters`);
    }
    if (seen.has(`${apiVersion}/${kind}/${metadata.name}`)) {
      failures.push(`${where}: rendered twice`);
    }
    seen.add(`${apiVersion}/${kind}/${metadata.name}`);

    const model = await load(apiVersion, kind);
    if (!model) {
      failures.push(`${where}: no schema for ${apiVersion} ${kind}`);
      continue;
    }
    try {
      new model(object).validate();
      console.log(`${apiVersion} ${kind} ${metadata.name}: valid`);
    } catch (error) {
      failures.push(`${where}: ${error.message}`);
    }
  }
}

if (failures.length > 0) {
  for (const failure of failures) console.error(`INVALID ${failure}`);
  process.exit(1);
}

async function load(apiVersion, kind) {
  const path = apiVersion.includes("/") ? apiVersion : `v1`;
  const candidates = apiVersion.endsWith(".coreos.com/v1")
    ? [`@kubernetes-models/prometheus-operator/${path}/${kind}`]
    : [`kubernetes-models/${path}/${kind}`];
  for (const candidate of candidates) {
    try {
      const module = await import(candidate);
      return module[kind];
    } catch {
      // not this package
    }
  }
  return undefined;
}
