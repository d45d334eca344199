#include "core/job_spec.h"

#include "core/error.h"

namespace procnode {
namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& field, const std::string& reason) {
  throw Error(ErrorCode::kInvalidInput, "job specification: " + field + " " + reason);
}

const json& Field(const json& object, const std::string& name, json::value_t type, const char* type_name) {
  const auto it = object.find(name);
  if (it == object.end()) Bad(name, "is missing");
  const bool ok = it->type() == type || (type == json::value_t::number_unsigned && it->is_number_integer() && *it >= 0);
  if (!ok) Bad(name, std::string("must be ") + type_name);
  return *it;
}

std::vector<std::string> Strings(const json& list, const std::string& field) {
  if (!list.is_array()) Bad(field, "must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : list) {
    if (!item.is_string()) Bad(field, "must be a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

json AnonymizeJson(const AnonymizationSpec& a) {
  return {{"project", a.project}, {"options", a.options}, {"results", a.results_to_clinical ? "clinical" : "pseudonymous"}};
}

AnonymizationSpec AnonymizeFrom(const json& value) {
  AnonymizationSpec a;
  if (!value.is_object()) Bad("anonymize", "must be an object or null");
  if (value.contains("project")) {
    if (!value["project"].is_string()) Bad("anonymize.project", "must be a string");
    a.project = value["project"].get<std::string>();
  }
  if (value.contains("options")) a.options = Strings(value["options"], "anonymize.options");
  const std::string results = value.value("results", "pseudonymous");
  if (results != "pseudonymous" && results != "clinical") Bad("anonymize.results", "must be pseudonymous or clinical");
  a.results_to_clinical = results == "clinical";
  return a;
}

std::string Device(const json& value) {
  if (!value.is_string()) Bad("device", "must be a string");
  const std::string device = value.get<std::string>();
  if (device != "auto" && device != "cpu" && device != "gpu") Bad("device", "must be auto, cpu or gpu, not \"" + device + "\"");
  return device;
}

}  // namespace

nlohmann::json JobSpecToJson(const JobSpec& spec) {
  const JobRequirements& r = spec.requirements;
  json out = {{"version", 2},
          {"processor", spec.processor},
          {"processor_version", spec.processor_version},
          {"parameters", spec.parameters},
          {"device", spec.device},
          {"anonymize", spec.anonymize ? AnonymizeJson(*spec.anonymize) : json(nullptr)},
          {"destinations", spec.destinations},
          {"bids", spec.bids},
          {"requirements",
           {{"needs_gpu", r.needs_gpu}, {"prefers_gpu", r.prefers_gpu},
            {"device_memory_bytes", r.device_memory_bytes}, {"host_memory_bytes", r.host_memory_bytes}}}};
  if (!spec.executor.empty()) out["executor"] = spec.executor;  // absent in specs written before it existed
  if (!spec.results.empty()) out["results"] = spec.results;
  return out;
}

std::string SerializeJobSpec(const JobSpec& spec) { return JobSpecToJson(spec).dump(); }

JobSpec ParseJobSpec(const std::string& text) {
  const json stored = json::parse(text, nullptr, false);
  if (!stored.is_object()) Bad("", "is not a JSON object");
  const json& version = Field(stored, "version", json::value_t::number_unsigned, "a number");
  if (version != 2) Bad("version", version.dump() + " is not one this procnode reads (2)");
  JobSpec spec;
  spec.processor = Field(stored, "processor", json::value_t::string, "a string").get<std::string>();
  spec.processor_version = Field(stored, "processor_version", json::value_t::string, "a string").get<std::string>();
  spec.parameters = Field(stored, "parameters", json::value_t::object, "an object");
  spec.device = Device(Field(stored, "device", json::value_t::string, "a string"));
  if (stored.contains("anonymize") && !stored["anonymize"].is_null()) spec.anonymize = AnonymizeFrom(stored["anonymize"]);
  if (stored.contains("destinations")) spec.destinations = Strings(stored["destinations"], "destinations");
  if (stored.contains("bids") && !stored["bids"].is_null()) {
    spec.bids = Field(stored, "bids", json::value_t::array, "a list (the BIDS mapping)");
  }
  if (stored.contains("executor")) {
    spec.executor = Field(stored, "executor", json::value_t::string, "a string").get<std::string>();
    if (spec.executor != "local" && spec.executor != "slurm") Bad("executor", "must be \"local\" or \"slurm\"");
  }
  if (stored.contains("results")) spec.results = Strings(stored["results"], "results");
  if (stored.contains("requirements")) {
    const json& r = Field(stored, "requirements", json::value_t::object, "an object");
    auto flag = [&](const char* name) { return r.contains(name) && Field(r, name, json::value_t::boolean, "true or false").get<bool>(); };
    auto bytes = [&](const char* name) {
      return r.contains(name) ? Field(r, name, json::value_t::number_unsigned, "a byte count").get<uint64_t>() : uint64_t{0};
    };
    spec.requirements = {.needs_gpu = flag("needs_gpu"), .prefers_gpu = flag("prefers_gpu"),
                         .device_memory_bytes = bytes("device_memory_bytes"), .host_memory_bytes = bytes("host_memory_bytes")};
  }
  return spec;
}

std::string KeyParametersJson(const JobSpec& spec) {
  json with = spec.parameters;
  if (spec.anonymize) with["anonymize"] = AnonymizeJson(*spec.anonymize);
  if (spec.device != "auto") with["device"] = spec.device;
  if (!spec.destinations.empty()) with["destinations"] = spec.destinations;
  if (!spec.bids.is_null()) with["bids"] = spec.bids;  // a new mapping is a new export
  if (!spec.results.empty()) with["results"] = spec.results;  // other result objects: a new job
  return with.dump();
}

}  // namespace procnode
