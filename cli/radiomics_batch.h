// procnode radiomics INPUT... --out FEATURES.csv: radiomics over many cases, the grid systems'
// batch workload on one machine. A case is a folder holding one image series and its regions (an
// RTSTRUCT or SEG beside it, and/or --masks DIR/<case>.nii.gz, or --param regions_from=PROCESSOR);
// each INPUT is a case when it holds files itself, else each of its sub-folders is one. Cases run
// in parallel (--jobs, default every core up to 8), each through the radiomics processor with the
// same --param settings as `procnode process radiomics`. Every finished case is appended to a
// journal beside the CSV (FEATURES.csv.journal, one JSON line per case) before anything else, so
// a run that stops (crash, Ctrl-C, power) resumes where it was: cases already done are skipped,
// failed ones are tried again. The CSV (case, series, region, source, voxels, then one column per
// feature, rows sorted by case and region) is rewritten from the journal at the end, atomically.
// Progress (cases done, rate, time left, failures) on standard error. Exit 0 when every case is
// done, 2 when some failed (each named with its reason in the summary).
#pragma once

#include <nlohmann/json.hpp>

#include "cli/cli_args.h"
#include "processors/processor.h"

namespace procnode::cli {

// `parameters`: the radiomics processor's, from --param.
int RadiomicsBatch(const Args& args, const ProcessorRegistry& registry, const nlohmann::json& parameters);

}  // namespace procnode::cli
