/** Small builders shared by the sim/cluster tests. */

const nodes = (n: number): string => Array.from({ length: n }, (_, i) => `    - { name: node${i + 1}, owns: [${i + 1}] }`).join('\n');

/** A scenario YAML: an n-node CLUSTERIP cluster (node k owns node number k), a heartbeat line and a body (policy, events, ...). */
export const scenarioYaml = (n: number, body: string, hb = '{ interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0 }'): string => `name: test
cluster:
  cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip-sourceport, total_nodes: ${n} }
  nodes:
${nodes(n)}
heartbeat: ${hb}
${body}
`;
