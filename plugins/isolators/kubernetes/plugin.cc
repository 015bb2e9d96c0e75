// Registers the Kubernetes isolator under the name "kubernetes".
#include "airlock/cpp/plugin.hpp"
#include "kubernetes.h"

AIRLOCK_ISOLATOR_PLUGIN(
    airlock::isolators::kubernetes::KubernetesIsolator, "kubernetes", "1.0.0",
    "Runs each enclave as a Kubernetes Pod with its own NetworkPolicy; the enclave dials the "
    "kernel over mutual TLS",
    R"({"type":"object","additionalProperties":false,"required":["cluster","namespace","image"],
"properties":{
"cluster":{"type":"object"},
"namespace":{"type":"string"},
"image":{"type":"string"},
"image_pull_policy":{"type":"string","enum":["Always","IfNotPresent","Never"]},
"enclave_command":{"type":"array","items":{"type":"string"}},
"runtime_class":{"type":"string"},
"node_selector":{"type":"object","additionalProperties":{"type":"string"}},
"cpu":{"type":"string"},
"kernel_id":{"type":"string"},
"link":{"type":"object"},
"dns_namespace":{"type":"string"},
"dns_pod_labels":{"type":"object","additionalProperties":{"type":"string"}},
"secrets":{"type":"object"},
"mounts":{"type":"object"},
"image_paths":{"type":"array","items":{"type":"string"}},
"provision_timeout_ms":{"type":"integer","minimum":1000},
"deadline_slack_seconds":{"type":"integer","minimum":60},
"min_isolation":{"type":"array","items":{"type":"string"}}}})")
