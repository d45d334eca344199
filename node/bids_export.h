// A study exported into a BIDS dataset (ProcNode.Destinations of "Kind": "bids"): the research
// projects' "anonymise + dcm2nii into a shared folder" as a dataset BIDS tools open.
//
// Layout: ROOT/dataset_description.json, README, participants.tsv, sub-<pseudonym>/
// sub-<pseudonym>_sessions.tsv, sub-<pseudonym>/ses-<n>/<datatype>/sub-..._ses-..._<entities>_<suffix>
// .nii.gz + .json (+ .bval/.bvec for diffusion), and the processor's results under
// derivatives/procnode/sub-.../ses-.../. The subject label is the study's pseudonym (letters and
// digits only); a study keeps its session number across deliveries (ROOT/.procnode/state.json,
// keyed by the pseudonymous StudyInstanceUID), so delivering it again replaces its session, never
// adds one. participants.tsv has age and sex columns only when the anonymized data kept them;
// sessions.tsv an acq_time only when dates were kept (shifted on a modified-dates route).
//
// Series are placed by the rule's mapping (routing/bids_mapping.h), matched on the clinical
// series' attributes (which are never written), converted from the de-identified instances;
// unmatched series, and parts beyond a series' first (echoes, phase), are skipped and listed.
// Files are written into a staging folder, checked by the leak gate (every text file, NIfTI
// header and file name against the identities the anonymizer saw; one hit refuses the whole
// export), then moved into place by rename; mode and group as configured. One export at a time
// per dataset (a lock file), so several nodes may share a root. SDK-free.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/study.h"
#include "routing/bids_mapping.h"

namespace procnode {

struct BidsDataset {
  std::string root;                  // absolute
  std::string name = "procnode export";
  std::string group;                 // "" : the process's own
  unsigned file_mode = 0640, dir_mode = 0750;
};

// A result to keep under derivatives/procnode/: "desc" names it in the file name (letters and
// digits), "extension" with its dot (".dcm", ".json", ".pdf").
struct BidsDerivative {
  std::string desc, extension, bytes;
};

struct BidsExportResult {
  std::string subject, session;      // "sub-…", "ses-…"
  std::vector<std::string> written;  // paths relative to the root
  std::vector<std::string> skipped;  // "series 7 (MR): no mapping matched", ...
};

// Exports the study `study_id`: series listed and matched through `clinical`, instances read
// through `deidentified` (an AnonymizingStudySource over it); `phi_terms` gives the identities to
// check for once the instances were read. Error(kInvalidInput) when the leak gate finds a term or
// no series matches; Error(kUnavailable) when the dataset cannot be written.
BidsExportResult ExportStudyToBids(StudySource& clinical, StudySource& deidentified, const std::string& study_id,
                                   const std::vector<BidsSeriesRule>& mapping, const BidsDataset& dataset,
                                   const std::vector<BidsDerivative>& derivatives,
                                   const std::function<std::vector<std::string>()>& phi_terms);

}  // namespace procnode
