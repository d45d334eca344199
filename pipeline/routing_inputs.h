// What routing needs from the outside world: the study's attributes read through a StudySource
// (the first instance of each series), and the vocabulary rules are validated against (the DICOM
// dictionary, the pipelines procnode runs and their parameters, the configured destinations).
#pragma once

#include <set>
#include <string>

#include "core/study.h"
#include "processors/processor.h"
#include "routing/rule_set.h"

namespace procnode {

// Reads one instance per series (the first). Study attributes come from the first input series.
StudyAttributes ReadStudyAttributes(StudySource& source, const std::string& study_id);

// The vocabulary of `processors` (their names, versions and parameters) and the destinations.
RuleVocabulary DefaultVocabulary(const ProcessorRegistry& processors, std::set<std::string> destinations = {});

// The rule set used until an admin saves one: every study to the volume-stats pipeline.
const std::string& DefaultRuleSetJson();

}  // namespace procnode
