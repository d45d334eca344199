// What a job is to do, typed and serialised in one place: the processor (name, version, its
// parameters as the rule gave them), the device, the anonymization of an anonymized route, the
// destinations of the results, and what it requires of a worker. Routing makes it from a rule's
// action, the queue stores it (jobs.spec), workers and the Slurm executor read it.
//
// Stored form (version 2): {"version": 2, "processor": NAME, "processor_version": V,
// "parameters": {...}, "device": "auto"|"cpu"|"gpu", "anonymize": null | {"project", "options",
// "results": "pseudonymous"|"clinical"}, "destinations": [...], "requirements": {"needs_gpu",
// "prefers_gpu", "device_memory_bytes", "host_memory_bytes"}, "results": [...] (absent: the
// processor's defaults)}. Job rows of the first wave kept
// device, anonymize and destinations among the processor's parameters; the job database's
// migration 0009 converts them. Pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace procnode {

struct AnonymizationSpec {
  std::string project;               // the pseudonym namespace: "rule:<id>" unless the rule names one
  std::vector<std::string> options;  // PS3.15 option names (anonymizer/deidentify.h)
  bool results_to_clinical = false;  // results re-identified into the original study
  bool operator==(const AnonymizationSpec&) const = default;
};

struct JobRequirements {
  bool needs_gpu = false;    // only a worker with a GPU may run it (device "gpu")
  bool prefers_gpu = false;  // a GPU worker first, a CPU worker after the configured wait
  uint64_t device_memory_bytes = 0;  // estimate on a GPU: the processor's bytes per voxel x the input's voxels
  uint64_t host_memory_bytes = 0;    // estimate in host memory
  bool operator==(const JobRequirements&) const = default;
};

struct JobSpec {
  std::string processor;
  std::string processor_version = "1";
  nlohmann::json parameters = nlohmann::json::object();  // as the rule gave them; defaults apply when it runs
  std::string device = "auto";                           // auto, cpu or gpu
  std::optional<AnonymizationSpec> anonymize;            // set: an anonymized route
  std::vector<std::string> destinations;
  nlohmann::json bids = nullptr;  // the rule's BIDS mapping (routing/bids_mapping.h), for BIDS destinations
  std::string executor;           // "local", "slurm", or "" (the node's default, ProcNode.Executor.Kind)
  // The rule's "results": the result kinds to write ("pdf", "seg", "sr", "derived", ...); empty: the
  // processor's defaults.
  std::vector<std::string> results;
  JobRequirements requirements;
  bool operator==(const JobSpec&) const = default;
};

nlohmann::json JobSpecToJson(const JobSpec& spec);
std::string SerializeJobSpec(const JobSpec& spec);
// A stored spec (version 2). Error(kInvalidInput) naming the field that is missing or of the wrong type.
JobSpec ParseJobSpec(const std::string& text);
// The parameters part of a job's idempotency key, written as the first wave wrote it (the
// processor's parameters with device, anonymize and destinations among them), so that a study
// received again after an upgrade keeps its key and so its one job.
std::string KeyParametersJson(const JobSpec& spec);

}  // namespace procnode
