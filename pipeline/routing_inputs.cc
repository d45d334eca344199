#include "pipeline/routing_inputs.h"

#include <dcmtk/dcmdata/dcfilefo.h>

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
  for (const auto& name : AnonymizationOptionNames()) vocabulary.anonymization_options.insert(name);
  return vocabulary;
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
