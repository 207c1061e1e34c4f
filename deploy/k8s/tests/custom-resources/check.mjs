// The custom resources of rendered overlays against the OpenAPI schemas of their CRDs (KEDA,
// Strimzi, Prometheus Operator; the kubernetes-models packages are generated from those CRDs).
// Usage: node check.mjs RENDERED.yaml... ; exits 1 on an invalid resource or a custom kind
// with no schema here, so none is skipped silently. Run by bin/check-deploy.
import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import {
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { KafkaTopic } from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2";

const models = {
  "keda.sh/v1alpha1": { ScaledObject, TriggerAuthentication },
  "monitoring.coreos.com/v1": { PrometheusRule, ServiceMonitor },
  "kafka.strimzi.io/v1beta2": { KafkaTopic },
};
// API groups of Kubernetes itself: validated by kubernetes-validate, not here.
const builtIn = (apiVersion) => !apiVersion.includes(".") || /\.k8s\.io\//.test(apiVersion);

let failures = 0;
for (const file of process.argv.slice(2)) {
  const counts = {};
  for (const doc of loadAll(readFileSync(file, "utf8"))) {
    if (!doc || builtIn(doc.apiVersion)) continue;
    const where = `${file}: ${doc.kind} ${doc.metadata?.name}`;
    const Model = models[doc.apiVersion]?.[doc.kind];
    if (!Model) {
      console.log(`${where}: no schema for ${doc.apiVersion} here`);
      failures += 1;
      continue;
    }
    try {
      new Model(doc).validate();
      counts[doc.kind] = (counts[doc.kind] ?? 0) + 1;
    } catch (error) {
      console.log(`${where}: ${error.message}`);
      failures += 1;
    }
  }
  const summary = Object.entries(counts).map(([kind, n]) => `${n} ${kind}`).join(", ");
  console.log(`${file}: custom resources valid against their CRDs: ${summary}`);
}
process.exit(failures ? 1 : 0);
