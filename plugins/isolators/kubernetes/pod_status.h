// Reading a starting pod's status the way an operator would: whether it has
// failed for good, and why, in Kubernetes' own words.
#pragma once

#include <optional>
#include <string>

#include "airlock/cpp/values.hpp"

namespace airlock::isolators::kubernetes {

// Why the pod will not start or has ended ("ImagePullBackOff: Back-off
// pulling image ..."), or nullopt while it may still come up. Transient
// states (ContainerCreating, a first ErrImagePull that Kubernetes retries)
// are not failures.
std::optional<std::string> StartFailure(const Json& pod);

// A short description of where the pod is ("Pending", "Running", ...), for
// timeouts.
std::string PodPhaseSummary(const Json& pod);

}  // namespace airlock::isolators::kubernetes
