// A StudySource that hands out de-identified instances: every fetched instance goes through
// Deidentify() with the route's options before any stage sees it, so processing, result objects
// and anything sent on an anonymized route carry the pseudonym and remapped UIDs only. It keeps
// what the vault needs (identities and UID maps, per pseudonym) and the PHI terms of everything it
// has seen, for the leak gate. Local paths and cheap attribute reads of the wrapped source are not
// passed through (they would show PHI). Thread-safe (FetchInstance runs in parallel).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "anonymizer/deidentify.h"
#include "core/study.h"

namespace procnode {

class AnonymizingStudySource : public StudySource {
 public:
  AnonymizingStudySource(StudySource& inner, DeidentifyOptions options) : inner_(inner), options_(std::move(options)) {}

  std::vector<SeriesRef> ListSeries(const std::string& study_id) override { return inner_.ListSeries(study_id); }
  std::string FetchInstance(const std::string& instance_id) override;

  struct Patient {
    PatientIdentity identity;
    std::map<std::string, std::string> uid_map;
  };
  std::map<std::string, Patient> Patients() const;   // by pseudonym
  std::vector<std::string> PhiTerms() const;          // every term seen, with identity variants
  const DeidentifyOptions& options() const { return options_; }

 private:
  StudySource& inner_;
  DeidentifyOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, Patient> patients_;
  std::vector<std::string> terms_;
};

}  // namespace procnode
