#include "processors/processor.h"

#include <cmath>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/format.h"

namespace procnode {

void ProcessorRegistry::Add(std::unique_ptr<Processor> processor) {
  if (processor == nullptr) throw Error(ErrorCode::kInternal, "processor registry: null processor");
  const std::string& name = processor->Info().name;
  if (name.empty()) throw Error(ErrorCode::kInvalidInput, "processor registry: a processor has no name");
  if (Find(name) != nullptr) throw Error(ErrorCode::kInvalidInput, "processor '" + name + "' is registered twice");
  processors_.push_back(std::move(processor));
}

const Processor* ProcessorRegistry::Find(const std::string& name) const {
  for (const auto& p : processors_) {
    if (p->Info().name == name) return p.get();
  }
  return nullptr;
}

const Processor& ProcessorRegistry::Get(const std::string& name) const {
  if (const Processor* p = Find(name)) return *p;
  std::string known;
  for (const auto& p : processors_) known += (known.empty() ? "" : ", ") + p->Info().name;
  throw Error(ErrorCode::kInvalidInput, "processor '" + name + "' is unknown (known: " + (known.empty() ? "none" : known) + ")");
}

std::vector<const Processor*> ProcessorRegistry::All() const {
  std::vector<const Processor*> out;
  for (const auto& p : processors_) out.push_back(p.get());
  return out;
}

nlohmann::json ResolveParameters(const ProcessorInfo& info, const nlohmann::json& given) {
  if (!given.is_object() && !given.is_null()) throw Error(ErrorCode::kInvalidInput, info.name + ": parameters must be an object");
  nlohmann::json out = nlohmann::json::object();
  static const nlohmann::json kNone = nlohmann::json::object();
  for (const auto& item : (given.is_null() ? kNone : given).items()) {
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    const auto spec = std::find_if(info.parameters.begin(), info.parameters.end(), [&](const auto& s) { return s.name == key; });
    if (spec == info.parameters.end()) {
      throw Error(ErrorCode::kInvalidInput, info.name + ": unknown parameter '" + key + "'");
    }
    const std::string where = info.name + " parameter " + key;
    if (spec->type == "boolean" && !value.is_boolean()) throw Error(ErrorCode::kInvalidInput, where + ": must be true or false");
    if (spec->type == "string") {
      if (!value.is_string()) throw Error(ErrorCode::kInvalidInput, where + ": must be a string");
      if (!spec->choices.empty() && std::find(spec->choices.begin(), spec->choices.end(), value.get<std::string>()) == spec->choices.end()) {
        std::string choices;
        for (const auto& c : spec->choices) choices += (choices.empty() ? "" : ", ") + c;
        throw Error(ErrorCode::kInvalidInput, where + ": '" + value.get<std::string>() + "' is not one of " + choices);
      }
    }
    if (spec->type == "number" || spec->type == "integer") {
      if (!value.is_number() || (spec->type == "integer" && !value.is_number_integer())) {
        throw Error(ErrorCode::kInvalidInput, where + ": must be " + (spec->type == "integer" ? "an integer" : "a number"));
      }
      const double x = value.get<double>();
      if (!std::isfinite(x) || (spec->minimum && x < *spec->minimum) || (spec->maximum && x > *spec->maximum)) {
        throw Error(ErrorCode::kInvalidInput, where + ": " + value.dump() + " is outside [" +
                                                  (spec->minimum ? FormatNumber("%g", *spec->minimum) : "") + ", " +
                                                  (spec->maximum ? FormatNumber("%g", *spec->maximum) : "") + "]");
      }
    }
    out[key] = value;
  }
  for (const auto& spec : info.parameters) {
    if (!out.contains(spec.name)) out[spec.name] = spec.default_value;
  }
  return out;
}

nlohmann::json ParameterSchema(const ProcessorInfo& info) {
  nlohmann::json properties = nlohmann::json::object();
  for (const auto& spec : info.parameters) {
    nlohmann::json p{{"type", spec.type}, {"default", spec.default_value}, {"description", spec.description}};
    if (spec.minimum) p["minimum"] = *spec.minimum;
    if (spec.maximum) p["maximum"] = *spec.maximum;
    if (!spec.choices.empty()) p["enum"] = spec.choices;
    properties[spec.name] = p;
  }
  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
          {"title", info.name + " parameters"},
          {"type", "object"},
          {"additionalProperties", false},
          {"properties", properties}};
}

nlohmann::json ProcessorJson(const ProcessorInfo& info) {
  nlohmann::json out{{"name", info.name},
          {"version", info.version},
          {"description", info.description},
          {"report_title", info.report_title},
          {"modalities", info.modalities},
          {"min_slices", info.min_slices},
          {"gpu", info.has_gpu_implementation},
          {"gpu_bytes_per_voxel", info.gpu_bytes_per_voxel},
          {"host_bytes_per_voxel", info.host_bytes_per_voxel},
          {"parameters", ParameterSchema(info)},
          {"kind", info.kind}};
  if (!info.details.is_null()) out["details"] = info.details;
  return out;
}

std::string RejectionReason(const ProcessorInfo& info, const Volume& volume) {
  if (!info.modalities.empty() &&
      std::find(info.modalities.begin(), info.modalities.end(), volume.modality) == info.modalities.end()) {
    std::string accepted;
    for (const auto& m : info.modalities) accepted += (accepted.empty() ? "" : ", ") + m;
    return info.name + " accepts " + accepted + "; the series is " + (volume.modality.empty() ? "of unknown modality" : volume.modality);
  }
  // Slices: the volume's thinnest extent, whichever axis the converter put the slices on (a
  // sagittal series' slices may be its first axis); a 2D localizer has 1.
  const std::size_t slices = std::min({volume.dims[0], volume.dims[1], volume.dims[2]});
  if (slices < info.min_slices) {
    return info.name + " needs at least " + std::to_string(info.min_slices) + " slices; the series has " + std::to_string(slices);
  }
  return "";
}

ProcessorOutput RunChained(const ProcessorRegistry& registry, const std::string& caller, const Volume& volume, ProcessorContext inner,
                           const std::string& name, const nlohmann::json& given) {
  const Processor& upstream = registry.Get(name);
  if (upstream.Info().name == caller) throw Error(ErrorCode::kInvalidInput, caller + " cannot take its regions from itself");
  if (const std::string reason = RejectionReason(upstream.Info(), volume); !reason.empty()) {
    throw Error(ErrorCode::kInvalidInput, name + ": " + reason);
  }
  inner.run_processor = nullptr;  // no deeper chains
  inner.measurements_only = false;  // the chain reads its labels
  return upstream.Run(volume, ResolveParameters(upstream.Info(), given), inner);
}

}  // namespace procnode
