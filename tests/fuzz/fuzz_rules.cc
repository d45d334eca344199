// libFuzzer target: a routing rule set (JSON) as an admin saves it, against a vocabulary with the
// DICOM dictionary, two pipelines and a destination.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dicom/attributes.h"
#include "dicom/dictionary.h"
#include "routing/rule_set.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  procnode::UseCompiledDataDictionary();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const procnode::RuleVocabulary vocabulary = [] {
    procnode::RuleVocabulary v;
    v.keyword_to_tag = [](const std::string& keyword) { return procnode::DicomKeywordToTag(keyword); };
    v.pipeline_parameters = {{"volume-stats", {}}, {"lung-emphysema", {"variant", "smoothing_mm"}}};
    v.destinations = {"PACS", "RESEARCH"};
    v.bids_destinations = {"RESEARCH"};
    return v;
  }();
  (void)procnode::ParseRuleSet(std::string(reinterpret_cast<const char*>(data), size), vocabulary);
  return 0;
}
