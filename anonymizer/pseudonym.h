// Keyed, deterministic identifiers for de-identification (PS3.15 E.1-1 actions on identifiers).
//
// Pseudonym(): HMAC-SHA256(secret, project || patient identity), shown as "PN" + 20 base32
// characters, so one patient gets the same pseudonymous PatientID on every visit within a project
// and unrelated ones across projects. RemapUid(): "2.25." + the first 128 bits of
// HMAC-SHA256(secret, project || uid), consistent across a study and across a project's studies.
// The secret must come from configuration or the environment and is never logged. An empty secret
// is refused (Error kInvalidInput). Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace procnode {

std::string Pseudonym(std::string_view secret, std::string_view project,
                      std::string_view patient_identity);
std::string RemapUid(std::string_view secret, std::string_view project, std::string_view uid);

}  // namespace procnode
