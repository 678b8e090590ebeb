// A stored workflow's graph, drawn as a run's is, every step pending.
import { drawDag } from "./dag.js";

const snapshot = JSON.parse(document.getElementById("snapshot").textContent);
const dag = drawDag(document.getElementById("dag"), snapshot.graph, { onSelect: () => {} });
for (const node of snapshot.graph.nodes) dag.setStep(node.id, { state: "pending" });
