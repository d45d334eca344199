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

// What a job of `spec` will ask of a worker: a GPU when its device is gpu, a GPU preferred when it
// is auto and the processor has a GPU implementation; device and host memory from the processor's
// bytes per voxel and the input's voxels (rows x columns x frames x instances of the job's series,
// or of the study's largest series of a modality the processor accepts). Unknown sizes count 0.
JobRequirements EstimateRequirements(const JobSpec& spec, const Processor* processor, const StudyAttributes& study,
                                     const std::string& series_id);

// The rule set used until an admin saves one: every study to the volume-stats pipeline.
const std::string& DefaultRuleSetJson();

}  // namespace procnode
