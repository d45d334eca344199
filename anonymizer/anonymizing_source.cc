#include "anonymizer/anonymizing_source.h"

#include <algorithm>

#include "anonymizer/leak_checker.h"
#include "dicom/io.h"

namespace procnode {

std::string AnonymizingStudySource::FetchInstance(const std::string& instance_id) {
  const std::string name = "instance " + instance_id;
  auto file = ReadDicomBuffer(inner_.FetchInstance(instance_id), name);
  const DeidentifyOutcome outcome = Deidentify(*file, options_, name);
  std::string bytes = WriteDeidentified(*file, name);
  std::lock_guard lock(mutex_);
  Patient& patient = patients_[outcome.pseudonym];
  patient.identity = outcome.identity;
  patient.uid_map.insert(outcome.uid_map.begin(), outcome.uid_map.end());
  for (const auto& term : procnode::PhiTerms(outcome.identity, outcome.phi_terms)) {
    if (std::find(terms_.begin(), terms_.end(), term) == terms_.end()) terms_.push_back(term);
  }
  return bytes;
}

std::map<std::string, AnonymizingStudySource::Patient> AnonymizingStudySource::Patients() const {
  std::lock_guard lock(mutex_);
  return patients_;
}

std::vector<std::string> AnonymizingStudySource::PhiTerms() const {
  std::lock_guard lock(mutex_);
  return terms_;
}

}  // namespace procnode
