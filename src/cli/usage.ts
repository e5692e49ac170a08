export class UsageError extends Error {}

export const USAGE = `usage: flatnet [--lab NAME] COMMAND

cluster lab (namespaces on this machine):
  lab up [-f cluster.yaml] [--backend host-gw|vxlan|auto] [--datastore etcd|kubernetes]
                                      build the node network, start etcd, the API, controller, agents (reading
                                      etcd, or the lab's Kubernetes API as a DaemonSet does)
  lab down                            stop every process and remove every namespace and file of the lab
  lab status                          what is up: namespaces, processes, nodes, the API's kubeconfig
  lab kubeconfig                      the path of the kubeconfig for the lab's Kubernetes API (KUBECONFIG=$(...) kubectl get pods -A)
  lab node add NAME --segment SEG     add a node (namespace + agent) on a segment
  lab node rm NAME                    stop its agent, delete the Node and remove its namespace
  lab hold UNIT DURATION              hold off restarts of a unit (etcd, controller, agent-NODE) for 30s, 2m...; 0 releases
  lab supervise                       the lab's supervisor daemon (lab up starts it): restarts crashed units with backoff
  apply -f FILE                       create or update Namespaces, Pods, Deployments, Services, NetworkPolicies (multi-document YAML)
  delete -f FILE [--grace-period N] [--wait=false]   delete what FILE names; pods stop gracefully, waited for
  get nodes|pods|namespaces|deployments|services|endpointslices|networkpolicies [NAME] [-n NS | -A] [-o wide|json|yaml]
  exec [NS/]POD [-c CONTAINER] -- CMD [ARGS...]   run a command inside a pod
  policy explain FROM TO PORT[/tcp|udp|sctp]|icmp [--node NODE] [-o json]   the NetworkPolicy verdict on one
                                      connection, and why; --node: the tracer over that node's table too
  logs drops [-f] [--node NODE] [-n NS] [-o json]   policy drops (rate-limited per node), naming pods and the isolating policies
  check [-o json] [-v]                prove the network model's rules with real packets
  demo [--keep]                       3 nodes on 2 segments, pods, check, then remove the lab
  ui [--listen 127.0.0.1:7880]        a live web page of the lab's three networks and its policies
  trace FROM TO[:PORT[/tcp|udp|icmp]] [-o json]   one real tagged packet, hop by hop on every node, next to
                                      the path flatnet expected (FROM: NS/POD, node/NAME, external; TO: also
                                      svc/NS/NAME, node/NAME:NODEPORT or an IP); exit 1 when they disagree

workloads:
  serve --port N[/tcp|udp] ... [--name NAME] [--delay-shutdown S]   answer with the pod name and the client
                                      address seen; after SIGTERM, go on answering S seconds
  probe HOST:PORT [--protocol tcp|udp] [--timeout 2s]   ask a server; exit 0 on an answer

daemons:
  agent --etcd URL --node NAME --node-dir DIR [--iface IF | --node-ip IP] [--pod-runtime lab|none]
  agent --datastore kubernetes --config net-conf.json [--kubeconfig FILE] --node-dir DIR [--node NAME]
        through the Kubernetes API (kubeconfig, else the pod's ServiceAccount); the node: --node or $NODE_NAME
        [--disable proxy,masquerade,policy]   features turned off (their tables removed at start)
        [--health-listen 127.0.0.1:9470|off]   GET /healthz (alive), /readyz (every feature synced
                                      once) and /metrics (Prometheus)
  install-cni --root DIR [--source DIR] [--conflist FILE] [--uninstall]   put flatnet-cni into DIR/opt/cni/bin
                                      atomically (the DaemonSet's init container)
  apiserver --etcd URL --pki-dir DIR (--kubeconfig FILE | --listen IP:PORT) [--identity CLUSTER]   the Kubernetes
        API over etcd, on https://127.0.0.1 (writing the kubeconfig) or on IP:PORT; lab up starts it
  controller --etcd URL [--identity ID] [--node-monitor-grace-period 40s]   pods of a node NotReady that long go not Ready
  controller --datastore kubernetes --config net-conf.json [--kubeconfig FILE]   only the pod-CIDR loop: gives
                                      each Node without spec.podCIDRs a slice of the cluster CIDR
        [--metrics-listen 127.0.0.1:9471|off]   GET /metrics (Prometheus) for either controller

  --lab NAME   the lab to act on (default "flatnet", or $FLATNET_LAB)`;
