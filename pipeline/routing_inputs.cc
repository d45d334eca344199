#include "pipeline/routing_inputs.h"

#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>

#include "anonymizer/deidentify.h"
#include "core/error.h"
#include "pipeline/processing_pipeline.h"
#include "dicom/attributes.h"
#include "dicom/io.h"

namespace procnode {

StudyAttributes ReadStudyAttributes(StudySource& source, const std::string& study_id) {
  StudyAttributes study;
  study.id = study_id;
  for (const auto& series : source.ListSeries(study_id)) {
    SeriesAttributes attributes;
    attributes.id = series.id;
    attributes.instance_ids = series.instance_ids;
    attributes.produced_by_procnode = series.produced_by_procnode;
    if (!series.instance_ids.empty() && !series.produced_by_procnode) {
      if (auto cheap = source.InstanceAttributes(series.instance_ids.front())) {
        attributes.attributes = std::move(*cheap);  // without downloading the pixel data
      } else {
        const std::string name = "instance " + series.instance_ids.front();
        auto file = ReadInstance(source, series.instance_ids.front(), name);
        attributes.attributes = DatasetAttributes(*file->getDataset());
      }
    }
    if (study.attributes.empty() && !series.produced_by_procnode) study.attributes = attributes.attributes;
    study.series.push_back(std::move(attributes));
  }
  return study;
}

RuleVocabulary DefaultVocabulary(const ProcessorRegistry& processors, std::set<std::string> destinations) {
  RuleVocabulary vocabulary;
  vocabulary.keyword_to_tag = DicomKeywordToTag;
  for (const Processor* processor : processors.All()) {
    auto& names = vocabulary.pipeline_parameters[processor->Info().name];
    for (const auto& spec : processor->Info().parameters) names.insert(spec.name);
    vocabulary.pipeline_versions[processor->Info().name] = processor->Info().version;
  }
  vocabulary.check_parameter = [&processors](const std::string& pipeline, const std::string& name, const nlohmann::json& value) {
    try {
      ResolveParameters(processors.Get(pipeline).Info(), nlohmann::json{{name, value}});
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  vocabulary.destinations = std::move(destinations);
  for (const auto& name : ResultNames()) vocabulary.result_names.insert(name);
  for (const auto& name : AnonymizationOptionNames()) vocabulary.anonymization_options.insert(name);
  return vocabulary;
}

namespace {

uint64_t Count(const AttributeMap& attributes, uint32_t tag) {
  const auto it = attributes.find(tag);
  if (it == attributes.end()) return 0;
  try {
    const long long value = std::stoll(it->second);
    return value > 0 ? static_cast<uint64_t>(value) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

uint64_t Voxels(const SeriesAttributes& series) {
  const uint64_t frames = std::max<uint64_t>(1, Count(series.attributes, 0x00280008));  // NumberOfFrames
  return Count(series.attributes, 0x00280010) * Count(series.attributes, 0x00280011) * frames * series.instance_ids.size();
}

}  // namespace

JobRequirements EstimateRequirements(const JobSpec& spec, const Processor* processor, const StudyAttributes& study,
                                     const std::string& series_id) {
  JobRequirements r;
  r.needs_gpu = spec.device == "gpu";
  if (processor == nullptr) return r;
  const ProcessorInfo& info = processor->Info();
  r.prefers_gpu = spec.device == "auto" && info.has_gpu_implementation;
  if (info.requires_gpu) r.needs_gpu = true;
  r.device_memory_bytes = r.needs_gpu || r.prefers_gpu ? info.gpu_bytes_fixed : 0;
  r.host_memory_bytes = info.host_bytes_fixed;
  const SeriesAttributes* input = nullptr;
  for (const auto& s : study.series) {
    if (s.produced_by_procnode) continue;
    if (!series_id.empty()) {
      if (s.id == series_id) input = &s;
      continue;
    }
    const auto modality = s.attributes.find(0x00080060);
    const bool accepted = info.modalities.empty() ||
                          (modality != s.attributes.end() &&
                           std::find(info.modalities.begin(), info.modalities.end(), modality->second) != info.modalities.end());
    if (accepted && (input == nullptr || s.instance_ids.size() > input->instance_ids.size())) input = &s;
  }
  if (input == nullptr) return r;
  const uint64_t voxels = Voxels(*input);
  if (r.needs_gpu || r.prefers_gpu) r.device_memory_bytes += static_cast<uint64_t>(voxels * info.gpu_bytes_per_voxel);
  r.host_memory_bytes += static_cast<uint64_t>(voxels * info.host_bytes_per_voxel);
  return r;
}

const std::string& DefaultRuleSetJson() {
  static const std::string kDefault = R"({
  "mode": "all",
  "rules": [
    {
      "id": "default",
      "description": "Built-in default: every study to the volume statistics pipeline",
      "match": {"all": []},
      "action": {"pipeline": "volume-stats"}
    }
  ]
}
)";
  return kDefault;
}

}  // namespace procnode
