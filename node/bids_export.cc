#include "node/bids_export.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "anonymizer/leak_checker.h"
#include "core/error.h"
#include "core/version.h"
#include "dicom/attributes.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "nifti/nifti1.h"
#include "nifti/series_to_nifti.h"
#include "pipeline/routing_inputs.h"

namespace procnode {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Label(const std::string& text) {
  std::string label;
  for (unsigned char c : text) {
    if (std::isalnum(c)) label += static_cast<char>(c);
  }
  return label;
}

class Writer {
 public:
  explicit Writer(const BidsDataset& dataset) : dataset_(dataset) {
    if (!dataset.group.empty()) {
      const group* g = getgrnam(dataset.group.c_str());
      if (g == nullptr) throw Error(ErrorCode::kInvalidInput, "BIDS destination: group \"" + dataset.group + "\" unknown");
      gid_ = g->gr_gid;
    }
  }

  // Every folder it creates gets the dataset's mode and group (not only the last).
  void Directory(const fs::path& path) const {
    if (fs::is_directory(path)) return;
    if (path.has_parent_path() && path.parent_path() != path) Directory(path.parent_path());
    std::error_code ec;
    fs::create_directory(path, ec);
    if (ec) throw Error(ErrorCode::kUnavailable, path.string() + ": cannot be created (" + ec.message() + ")");
    Own(path, dataset_.dir_mode);
  }

  // Written under a temporary name beside it, then renamed into place.
  void File(const fs::path& path, const std::string& bytes) const {
    Directory(path.parent_path());
    const fs::path temporary = path.parent_path() / (".tmp-" + path.filename().string());
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out.flush()) throw Error(ErrorCode::kUnavailable, temporary.string() + ": write failed");
    }
    Own(temporary, dataset_.file_mode);
    std::error_code ec;
    fs::rename(temporary, path, ec);
    if (ec) throw Error(ErrorCode::kUnavailable, path.string() + ": cannot be put in place (" + ec.message() + ")");
  }

  void Own(const fs::path& path, unsigned mode) const {
    if (gid_ != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid_) != 0) {
      throw Error(ErrorCode::kUnavailable, path.string() + ": cannot be given to group " + dataset_.group);
    }
    if (::chmod(path.c_str(), mode) != 0) throw Error(ErrorCode::kUnavailable, path.string() + ": cannot set its mode");
  }

 private:
  const BidsDataset& dataset_;
  gid_t gid_ = static_cast<gid_t>(-1);
};

// One export at a time per dataset: an exclusive lock on ROOT/.procnode/lock while it runs.
class DatasetLock {
 public:
  explicit DatasetLock(const fs::path& file) {
    fd_ = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw Error(ErrorCode::kUnavailable, file.string() + ": cannot be locked");
  }
  ~DatasetLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  DatasetLock(const DatasetLock&) = delete;
  DatasetLock& operator=(const DatasetLock&) = delete;

 private:
  int fd_ = -1;
};

std::string TsvValue(const json& value) { return value.is_string() && !value.get<std::string>().empty() ? value.get<std::string>() : "n/a"; }

// "045Y" -> "45" (BIDS age in years); other units: the number of years they make, rounded down.
std::string AgeYears(const std::string& age) {
  if (age.size() != 4 || !std::isdigit(static_cast<unsigned char>(age[0]))) return "";
  const int n = std::atoi(age.substr(0, 3).c_str());
  switch (age[3]) {
    case 'Y': return std::to_string(n);
    case 'M': return std::to_string(n / 12);
    case 'W': return std::to_string(n / 52);
    case 'D': return std::to_string(n / 365);
    default: return "";
  }
}

// "20240131" + "101500.25" -> "2024-01-31T10:15:00".
std::string AcquisitionTime(const std::string& date, const std::string& time) {
  if (date.size() != 8) return "";
  std::string out = date.substr(0, 4) + "-" + date.substr(4, 2) + "-" + date.substr(6, 2);
  std::string t = time.size() >= 6 ? time.substr(0, 6) : "000000";
  return out + "T" + t.substr(0, 2) + ":" + t.substr(2, 2) + ":" + t.substr(4, 2);
}

}  // namespace

BidsExportResult ExportStudyToBids(StudySource& clinical, StudySource& deidentified, const std::string& study_id,
                                   const std::vector<BidsSeriesRule>& mapping, const BidsDataset& dataset,
                                   const std::vector<BidsDerivative>& derivatives,
                                   const std::function<std::vector<std::string>()>& phi_terms) {
  const fs::path root(dataset.root);
  const Writer writer(dataset);
  writer.Directory(root);
  writer.Directory(root / ".procnode");
  DatasetLock lock(root / ".procnode" / "lock");

  // Which series go where, matched on the clinical attributes (never written anywhere).
  struct Placed {
    SeriesRef series;
    const BidsSeriesRule* rule = nullptr;
    int number = 0;
  };
  std::vector<Placed> placed;
  BidsExportResult result;
  // The series' attributes as the routing reads them (cheaply, without pixel data, from Orthanc).
  for (const auto& attributes : ReadStudyAttributes(clinical, study_id).series) {
    if (attributes.produced_by_procnode || attributes.instance_ids.empty()) continue;
    auto value_of = [&](uint32_t tag) {
      const auto it = attributes.attributes.find(tag);
      return it == attributes.attributes.end() ? std::string() : it->second;
    };
    const SeriesRef series{.id = attributes.id, .modality = value_of(0x00080060), .instance_ids = attributes.instance_ids};
    const int number = std::atoi(value_of(0x00200011).c_str());
    const BidsSeriesRule* match = nullptr;
    for (const auto& rule : mapping) {
      if (BidsPatternMatches(rule.pattern, value_of(DicomKeywordToTag(rule.attribute).value_or(0)))) {
        match = &rule;
        break;
      }
    }
    const std::string what = "series " + std::to_string(number) + " (" + series.modality + ")";
    if (match == nullptr) {
      result.skipped.push_back(what + ": no mapping matched");
      continue;
    }
    placed.push_back({series, match, number});
  }
  if (placed.empty()) {
    throw Error(ErrorCode::kInvalidInput, "BIDS export of study " + study_id + ": no series matched the rule's mapping (" +
                                              std::to_string(result.skipped.size()) + " skipped)");
  }
  std::stable_sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) { return a.number < b.number; });

  // Subject, session and the participant's facts from the de-identified first instance.
  auto first = ReadInstance(deidentified, placed.front().series.instance_ids.front(), "series " + placed.front().series.id);
  DcmDataset& head = *first->getDataset();
  const std::string subject = Label(DicomString(head, 0x0010, 0x0020));
  if (subject.empty()) throw Error(ErrorCode::kInvalidInput, "BIDS export: the de-identified study has no PatientID to label its subject");
  const std::string study_key = DicomString(head, 0x0020, 0x000D);
  // The dataset's own state: session numbers by subject and pseudonymous study, and what
  // participants.tsv and sessions.tsv list: {"subjects": {label: {"age", "sex", "sessions":
  // {study: {"n", "acq_time"}}}}}.
  json state = json::object();
  const fs::path state_file = root / ".procnode" / "state.json";
  if (fs::exists(state_file)) {
    std::ifstream in(state_file);
    state = json::parse(in, nullptr, false);
    if (!state.is_object()) throw Error(ErrorCode::kUnavailable, state_file.string() + ": unreadable; restore or remove it");
  }
  json& person = state["subjects"][subject];
  json& sessions = person["sessions"];
  if (!sessions.is_object()) sessions = json::object();
  int session_number = 0;
  if (sessions.contains(study_key)) {
    session_number = sessions[study_key]["n"].get<int>();
  } else {
    for (const auto& [key, value] : sessions.items()) session_number = std::max(session_number, value["n"].get<int>());
    ++session_number;
  }
  const std::string age = AgeYears(DicomString(head, 0x0010, 0x1010));
  const std::string sex = DicomString(head, 0x0010, 0x0040);
  if (!age.empty()) person["age"] = age;
  if (!sex.empty()) person["sex"] = sex;
  json& session_state = sessions[study_key];
  session_state["n"] = session_number;
  const std::string acq_time = AcquisitionTime(DicomString(head, 0x0008, 0x0020), DicomString(head, 0x0008, 0x0030));
  if (!acq_time.empty()) session_state["acq_time"] = acq_time;
  else session_state.erase("acq_time");
  result.subject = "sub-" + subject;
  result.session = "ses-" + std::to_string(session_number);

  // The session, staged.
  std::string random_suffix;
  {
    std::random_device device;
    for (int i = 0; i < 8; ++i) random_suffix += "0123456789abcdef"[device() % 16];
  }
  const fs::path staging = root / ".procnode" / ("staging-" + random_suffix);
  const fs::path session_dir = staging / result.subject / result.session;
  std::vector<std::pair<fs::path, std::string>> staged;  // relative path, text to check ("" for binary)
  try {
    std::map<std::string, std::vector<std::size_t>> by_name;  // name without run -> placed indices
    std::vector<std::string> names(placed.size());
    for (std::size_t i = 0; i < placed.size(); ++i) {
      std::string name = result.subject + "_" + result.session;
      for (const auto& [entity, value] : placed[i].rule->entities) name += "_" + entity + "-" + value;
      names[i] = name;
      by_name[name + "|" + placed[i].rule->datatype + "|" + placed[i].rule->suffix].push_back(i);
    }
    for (const auto& [key, indices] : by_name) {
      const bool has_run = std::any_of(placed[indices[0]].rule->entities.begin(), placed[indices[0]].rule->entities.end(),
                                       [](const auto& e) { return e.first == "run"; });
      for (std::size_t k = 0; k < indices.size(); ++k) {
        const std::size_t i = indices[k];
        if (indices.size() > 1 && !has_run) names[i] += "_run-" + std::to_string(k + 1);
        names[i] += "_" + placed[i].rule->suffix;
      }
    }
    for (std::size_t i = 0; i < placed.size(); ++i) {
      const auto& p = placed[i];
      const std::string what = "series " + std::to_string(p.number) + " (" + p.series.modality + ")";
      std::vector<NiftiConversion> parts;
      try {
        parts = ConvertSeriesToNifti(deidentified, p.series);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kInternal || e.code() == ErrorCode::kUnavailable) throw;
        result.skipped.push_back(what + ": not converted (" + e.what() + ")");
        continue;
      }
      for (std::size_t k = 1; k < parts.size(); ++k) {
        result.skipped.push_back(what + ": part " + parts[k].suffix + " not placed (only a series' first part is)");
      }
      NiftiConversion& part = parts.front();
      const fs::path base = fs::path(result.subject) / result.session / p.rule->datatype / names[i];
      json sidecar = part.sidecar;
      for (const auto& [entity, value] : p.rule->entities) {
        if (entity == "task") sidecar["TaskName"] = value;
      }
      const std::string nifti = NiftiFileBytes(part.image, true);
      staged.emplace_back(base.string() + ".nii.gz", NiftiHeaderBytes(part.image));
      writer.File(staging / (base.string() + ".nii.gz"), nifti);
      const std::string text = sidecar.dump(2) + "\n";
      staged.emplace_back(base.string() + ".json", text);
      writer.File(staging / (base.string() + ".json"), text);
      if (part.gradients && p.rule->datatype == "dwi") {
        staged.emplace_back(base.string() + ".bval", BvalText(*part.gradients));
        writer.File(staging / (base.string() + ".bval"), BvalText(*part.gradients));
        if (!part.gradients->bvecs.empty()) {
          staged.emplace_back(base.string() + ".bvec", BvecText(*part.gradients));
          writer.File(staging / (base.string() + ".bvec"), BvecText(*part.gradients));
        }
      }
    }
    // The processor's results.
    for (const auto& d : derivatives) {
      const fs::path path = fs::path("derivatives") / "procnode" / result.subject / result.session /
                            (result.subject + "_" + result.session + "_desc-" + Label(d.desc) + d.extension);
      staged.emplace_back(path.string(), d.bytes);
      writer.File(staging / path, d.bytes);
    }

    // The leak gate: nothing leaves with a trace of the identities the anonymizer saw.
    const auto terms = phi_terms();
    for (const auto& [path, text] : staged) {
      std::vector<LeakHit> hits = ScanFileName(path.string(), terms);
      if (!text.empty()) {
        auto more = ScanBytes(text, terms, path.string());
        hits.insert(hits.end(), more.begin(), more.end());
      }
      if (!hits.empty()) {
        throw Error(ErrorCode::kInvalidInput, "BIDS export refused by the leak gate: " + hits.front().where +
                                                  " holds an identifying term of the source study");
      }
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw;
  }

  // Into place: the session folders replace what an earlier delivery of the study wrote.
  auto swap_in = [&](const fs::path& relative) {
    const fs::path from = staging / relative, to = root / relative;
    if (!fs::exists(from)) return;
    writer.Directory(to.parent_path());
    const fs::path old = root / ".procnode" / ("old-" + random_suffix);
    std::error_code ec;
    if (fs::exists(to)) fs::rename(to, old, ec);
    if (!ec) fs::rename(from, to, ec);
    if (ec) throw Error(ErrorCode::kUnavailable, to.string() + ": cannot be put in place (" + ec.message() + ")");
    fs::remove_all(old, ec);
  };
  const fs::path session_relative = fs::path(result.subject) / result.session;
  swap_in(session_relative);
  swap_in(fs::path("derivatives") / "procnode" / session_relative);
  std::error_code ignored;
  for (const auto& [path, text] : staged) result.written.push_back(path.string());
  fs::remove_all(staging, ignored);

  // Dataset-level files, from the state.
  const json generated = json::array({{{"Name", "procnode"}, {"Version", kVersion}}});
  writer.File(root / "dataset_description.json",
              json{{"Name", dataset.name}, {"BIDSVersion", "1.8.0"}, {"DatasetType", "raw"}, {"GeneratedBy", generated}}.dump(2) + "\n");
  writer.File(root / "README", "Pseudonymous imaging data exported by procnode " + std::string(kVersion) +
                                   ": one subject per pseudonym, one session per study.\n");
  writer.File(root / "derivatives" / "procnode" / "dataset_description.json",
              json{{"Name", dataset.name + " (procnode results)"}, {"BIDSVersion", "1.8.0"},
                   {"DatasetType", "derivative"}, {"GeneratedBy", generated}}.dump(2) + "\n");
  bool any_age = false, any_sex = false;
  for (const auto& [label, facts] : state["subjects"].items()) {
    any_age = any_age || facts.contains("age");
    any_sex = any_sex || facts.contains("sex");
  }
  std::string participants = std::string("participant_id") + (any_age ? "\tage" : "") + (any_sex ? "\tsex" : "") + "\n";
  for (const auto& [label, facts] : state["subjects"].items()) {
    participants += "sub-" + label;
    if (any_age) participants += "\t" + TsvValue(facts.value("age", json()));
    if (any_sex) participants += "\t" + TsvValue(facts.value("sex", json()));
    participants += "\n";
  }
  writer.File(root / "participants.tsv", participants);
  json columns = json::object();
  if (any_age) columns["age"] = {{"Description", "age at the study, as the anonymized data kept it"}, {"Units", "year"}};
  if (any_sex) columns["sex"] = {{"Description", "sex, as the anonymized data kept it"},
                                 {"Levels", {{"F", "female"}, {"M", "male"}, {"O", "other"}}}};
  if (!columns.empty()) writer.File(root / "participants.json", columns.dump(2) + "\n");
  bool timed = false;
  for (const auto& [study, s] : sessions.items()) timed = timed || s.contains("acq_time");
  std::vector<std::pair<int, std::string>> rows;
  for (const auto& [study, s] : sessions.items()) {
    rows.emplace_back(s["n"].get<int>(), "ses-" + std::to_string(s["n"].get<int>()) +
                                             (timed ? "\t" + TsvValue(s.value("acq_time", json())) : "") + "\n");
  }
  std::sort(rows.begin(), rows.end());
  std::string sessions_tsv = std::string("session_id") + (timed ? "\tacq_time" : "") + "\n";
  for (const auto& row : rows) sessions_tsv += row.second;
  writer.File(root / result.subject / (result.subject + "_sessions.tsv"), sessions_tsv);
  writer.File(state_file, state.dump(2) + "\n");
  return result;
}

}  // namespace procnode
