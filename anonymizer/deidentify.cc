#include "anonymizer/deidentify.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <cctype>
#include <chrono>
#include <limits>
#include <optional>
#include <set>

#include "anonymizer/dicom_text.h"
#include "anonymizer/leak_checker.h"
#include "anonymizer/name_match.h"
#include "anonymizer/profile_table.h"
#include "anonymizer/pseudonym.h"
#include "core/error.h"
#include "core/text.h"
#include "core/version.h"
#include "dicom/image.h"
#include "dicom/private_tags.h"
#include "dicom/io.h"

namespace procnode {
namespace {

// Every DCMTK write of the de-identifier goes through here: a failure refuses the object, naming
// it and what could not be written, so nothing leaves half de-identified (it is never retried:
// the same object would fail the same way).
void Check(const OFCondition& status, const std::string& name, const std::string& what) {
  if (status.bad()) {
    throw Error(ErrorCode::kInvalidInput, name + ": de-identification refused: cannot " + what + " (" + status.text() + ")");
  }
}

// As Check, where the element may legitimately be absent.
void CheckDeleted(const OFCondition& status, const std::string& name, const std::string& what) {
  if (status != EC_TagNotFound) Check(status, name, what);
}

using Dates = DeidentifyOptions::Dates;

// A multi-valued text ('\\'-separated) with each value replaced by `map` (nullopt: left out).
template <typename Map>
std::string MapValues(const std::string& values, Map&& map) {
  std::string out;
  std::size_t start = 0;
  while (start <= values.size()) {
    const std::size_t end = std::min(values.find('\\', start), values.size());
    if (const std::optional<std::string> value = map(values.substr(start, end - start))) {
      out += (out.empty() ? "" : "\\") + *value;
    }
    start = end + 1;
  }
  return out;
}

bool IsText(DcmEVR vr) {
  switch (vr) {
    case EVR_AE: case EVR_AS: case EVR_CS: case EVR_DA: case EVR_DS: case EVR_DT: case EVR_IS: case EVR_LO:
    case EVR_LT: case EVR_PN: case EVR_SH: case EVR_ST: case EVR_TM: case EVR_UC: case EVR_UR: case EVR_UT:
      return true;
    default:
      return false;
  }
}

class Deidentifier {
 public:
  Deidentifier(const DeidentifyOptions& options, const std::string& name) : o_(options), name_(name) {
    enabled_ = {{ProfileOption::kRetainSafePrivate, o_.retain_safe_private},
                {ProfileOption::kRetainUids, o_.retain_uids},
                {ProfileOption::kRetainDeviceIdentity, o_.retain_device_identity},
                {ProfileOption::kRetainInstitutionIdentity, o_.retain_institution_identity},
                {ProfileOption::kRetainPatientCharacteristics, o_.retain_patient_characteristics},
                {ProfileOption::kRetainLongitudinalFullDates, o_.dates == Dates::kFull},
                {ProfileOption::kRetainLongitudinalModifiedDates, o_.dates == Dates::kModified},
                {ProfileOption::kCleanDescriptors, o_.clean_descriptors},
                {ProfileOption::kCleanStructuredContent, o_.clean_structured_content},
                {ProfileOption::kCleanGraphics, o_.clean_graphics}};
  }

  DeidentifyOutcome Run(DcmFileFormat& file) {
    DcmDataset& ds = *file.getDataset();
    // Text in any Specific Character Set (code extensions included: ISO 2022 IR 13/87/149, GB18030,
    // Latin, Greek, Cyrillic, Arabic, Hebrew, Thai) becomes UTF-8 before names are collected or
    // searched, so that every script is compared as Unicode, and the object is written back in a
    // valid encoding (ISO_IR 192). Text that cannot be decoded is refused: names in it could not be
    // found.
    ConvertTextToUtf8(ds, name_);
    CheckRefusals(ds);
    // Identity and PHI terms before anything changes.
    PatientIdentity& id = out_.identity;
    id.patient_name = DicomString(ds, DCM_PatientName);
    id.patient_id = DicomString(ds, DCM_PatientID);
    id.birth_date = DicomString(ds, DCM_PatientBirthDate);
    id.sex = DicomString(ds, DCM_PatientSex);
    id.accession_number = DicomString(ds, DCM_AccessionNumber);
    id.study_date = DicomString(ds, DCM_StudyDate);
    id.study_instance_uid = DicomString(ds, DCM_StudyInstanceUID);
    CollectTerms(ds);
    const std::string key = id.patient_id.empty() ? id.patient_name + "|" + id.birth_date
                                                  : id.patient_id + "|" + DicomString(ds, DCM_IssuerOfPatientID);
    out_.pseudonym = Pseudonym(o_.secret, o_.project, key);
    if (o_.dates == Dates::kModified) {
      const std::string mac = RemapUid(o_.secret, o_.project, "date-shift|" + key);
      out_.date_shift_days = static_cast<int>(std::stoull(mac.substr(mac.size() - 9)) % 3650) + 1;
    }
    Process(ds, false);
    Mark(ds);
    // The meta header follows the remapped SOP Instance UID.
    if (DcmMetaInfo* meta = file.getMetaInfo()) {
      const std::string sop = DicomString(ds, DCM_SOPInstanceUID);
      Check(meta->putAndInsertString(DCM_MediaStorageSOPInstanceUID, sop.c_str()), name_,
            "write MediaStorageSOPInstanceUID in the meta header");
      CheckDeleted(meta->findAndDeleteElement(DCM_SourceApplicationEntityTitle), name_,
                   "remove SourceApplicationEntityTitle from the meta header");
    }
    return out_;
  }

 private:
  void CheckRefusals(DcmDataset& ds) {
    if (UpperCase(DicomString(ds, DCM_BurnedInAnnotation)) == "YES") {
      const std::string manufacturer = DicomString(ds, DCM_Manufacturer), model = DicomString(ds, DCM_ManufacturerModelName);
      Uint16 rows = 0, columns = 0;
      ds.findAndGetUint16(DCM_Rows, rows);
      ds.findAndGetUint16(DCM_Columns, columns);
      const auto rule = std::find_if(o_.pixel_rules.begin(), o_.pixel_rules.end(), [&](const PixelCleaningRule& r) {
        return (r.manufacturer.empty() || r.manufacturer == manufacturer) && (r.model.empty() || r.model == model) &&
               r.rows == rows && r.columns == columns;
      });
      if (rule == o_.pixel_rules.end()) {
        throw Error(ErrorCode::kInvalidInput, name_ + ": BurnedInAnnotation is YES and no Clean Pixel Data rule covers " +
                                                  (manufacturer.empty() ? std::string("this device") : manufacturer) + " " +
                                                  model + " " + std::to_string(rows) + "x" + std::to_string(columns) +
                                                  ": refused");
      }
      CleanPixels(ds, *rule);
    }
    if (!o_.allow_recognizable_visual_features) {
      const std::string modality = DicomString(ds, DCM_Modality);
      const std::string where = UpperCase(DicomString(ds, DCM_BodyPartExamined) + " " + DicomString(ds, DCM_StudyDescription) + " " +
                                      DicomString(ds, DCM_SeriesDescription) + " " + DicomString(ds, DCM_ProtocolName));
      const bool head = where.find("HEAD") != std::string::npos || where.find("BRAIN") != std::string::npos ||
                        where.find("SKULL") != std::string::npos || where.find("FACE") != std::string::npos;
      const bool volume = (modality == "MR" && UpperCase(DicomString(ds, DCM_MRAcquisitionType)) == "3D") || modality == "CT";
      if (head && volume) {
        throw Error(ErrorCode::kInvalidInput, name_ + ": a 3D head " + modality +
                                                  " volume can be rendered into a recognizable face: refused (the project "
                                                  "must allow recognizable visual features)");
      }
    }
  }

  // Blanks the rule's regions in uncompressed pixel data (to the smallest stored value, 0).
  void CleanPixels(DcmDataset& ds, const PixelCleaningRule& rule) {
    Uint16 rows = 0, columns = 0, bits = 0, samples = 1;
    ds.findAndGetUint16(DCM_Rows, rows);
    ds.findAndGetUint16(DCM_Columns, columns);
    ds.findAndGetUint16(DCM_BitsAllocated, bits);
    ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
    Sint32 frames = 1;
    ds.findAndGetSint32(DCM_NumberOfFrames, frames);
    DcmElement* pixel = nullptr;
    if (ds.findAndGetElement(DCM_PixelData, pixel).bad() || ds.getOriginalXfer() == EXS_JPEGProcess14SV1 ||
        DcmXfer(ds.getOriginalXfer()).isEncapsulated()) {
      throw Error(ErrorCode::kInvalidInput, name_ + ": Clean Pixel Data needs uncompressed pixel data: refused");
    }
    Uint8* data = nullptr;
    Check(pixel->getUint8Array(data), name_, "read the pixel data to clean it");
    const std::size_t bytes = bits / 8 * samples;
    const std::size_t needed = static_cast<std::size_t>(std::max<Sint32>(frames, 1)) * rows * columns * bytes;
    if (data == nullptr || bits % 8 != 0 || bytes == 0 || pixel->getLength() < needed) {
      throw Error(ErrorCode::kInvalidInput, name_ + ": Clean Pixel Data refused: the pixel data (" +
                                                std::to_string(pixel->getLength()) + " bytes) is shorter than Rows x Columns x "
                                                "frames x samples x bytes (" + std::to_string(needed) + ") or has no bytes");
    }
    for (Sint32 f = 0; f < std::max<Sint32>(frames, 1); ++f) {
      for (const auto& r : rule.regions) {
        for (long y = std::max(0L, r[1]); y <= std::min<long>(rows - 1, r[3]); ++y) {
          for (long x = std::max(0L, r[0]); x <= std::min<long>(columns - 1, r[2]); ++x) {
            std::fill_n(data + ((static_cast<std::size_t>(f) * rows + y) * columns + x) * bytes, bytes, Uint8{0});
          }
        }
      }
    }
    Check(ds.putAndInsertString(DCM_BurnedInAnnotation, "NO"), name_, "write BurnedInAnnotation");
    pixels_cleaned_ = true;
  }

  // `word`: a name (whole words where short, in spaced scripts); otherwise an identifier matched
  // anywhere. Terms in unspaced scripts (a one-character Chinese family name) are kept whatever
  // their length.
  void AddTerm(std::string term, bool word) {
    while (!term.empty() && (term.back() == ' ' || term.back() == '^')) term.pop_back();
    while (!term.empty() && (term.front() == ' ' || term.front() == '^')) term.erase(0, 1);
    if (term.empty() || IsPlaceholder(term) || (term.size() < 3 && !IsUnspacedScript(term))) return;
    NameTerm prepared = PrepareTerm(term, word ? std::numeric_limits<std::size_t>::max() : 0);
    for (const auto& [t, p] : terms_) {
      if (p.folded == prepared.folded) return;
    }
    terms_.emplace_back(term, std::move(prepared));
  }

  // Every person's name (and its parts), the patient's IDs, accession number, birth date in its
  // usual spellings, address and phone numbers: anywhere in the object.
  void CollectTerms(DcmItem& item) {
    for (unsigned long i = 0; i < item.card(); ++i) {
      DcmElement* el = item.getElement(i);
      const DcmTagKey tag = el->getTag();
      if (el->ident() == EVR_SQ) {
        auto* sq = static_cast<DcmSequenceOfItems*>(el);
        for (unsigned long k = 0; k < sq->card(); ++k) CollectTerms(*sq->getItem(k));
        continue;
      }
      if (!IsText(el->ident())) continue;
      OFString value;
      Check(el->getOFStringArray(value), name_, "read " + std::string(DcmTag(tag).getTagName()) + " for the leak gate");
      const std::string v = value.c_str();
      if (v.empty()) continue;
      if (el->ident() == EVR_PN) {
        AddTerm(v, true);
        for (const auto& part : NameParts(v, "^= \\")) AddTerm(part, true);
      } else if (tag == DCM_PatientID || tag == DCM_AccessionNumber || tag == DcmTagKey(0x0010, 0x1000) ||
                 tag == DcmTagKey(0x0010, 0x1090) || tag == DCM_PatientAddress || tag == DCM_PatientTelephoneNumbers ||
                 tag == DCM_AdmissionID) {
        AddTerm(v, false);
      } else if (tag == DCM_PatientBirthDate) {
        for (const auto& form : BirthDateForms(v)) AddTerm(form, false);
      }
    }
  }

  // Masks every PHI term in `text` (asterisks; X in code strings); returns whether anything changed.
  bool Scrub(std::string& text, char mask = '*') const {
    const FoldedText folded = FoldText(text);
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    for (const auto& [term, prepared] : terms_) {
      for (const auto& range : FindTerm(folded, prepared)) ranges.push_back(range);
    }
    if (ranges.empty()) return false;
    text = MaskRanges(text, std::move(ranges), mask);
    return true;
  }

  enum class Act { kKeep, kRemove, kEmpty, kDummy, kUid, kUidSequence, kClean };

  Act Resolve(DcmItem& item, const DcmTagKey& tag, DcmEVR vr) {
    const uint16_t group = tag.getGroup(), element = tag.getElement();
    if (group == 0x0002) return Act::kKeep;  // meta header: handled at the end
    if (group % 2 == 1) {
      if (element >= 0x0010 && element <= 0x00FF) return Act::kKeep;  // creators: pruned after
      if (!o_.retain_safe_private || element < 0x1000) return Act::kRemove;
      // Safe private attributes: technical values with no identity in them (dicom/private_tags.h),
      // kept by creator, group and element byte (whichever block the creator took).
      const std::string creator = DicomString(item, DcmTagKey(group, element >> 8));
      for (const auto& safe : kPrivateAttributes) {
        if (safe.safe && creator == safe.creator && group == safe.group && (element & 0xFF) == (safe.element & 0xFF)) return Act::kKeep;
      }
      return Act::kRemove;
    }
    // A whole overlay or curve group goes with its data (unless Clean Graphics keeps them).
    if ((group >= 0x6000 && group <= 0x60FF) || (group >= 0x5000 && group <= 0x50FF)) {
      return o_.clean_graphics ? Act::kClean : Act::kRemove;
    }
    const ProfileEntry* entry = FindProfileEntry(group, element);
    if (entry == nullptr) return Act::kKeep;
    std::string action = entry->basic;
    for (const auto& [option, option_action] : entry->options) {
      if (enabled_[option]) action = option_action;
    }
    if (action == "K") return Act::kKeep;
    if (action == "X") return Act::kRemove;
    // A sequence that may go (X/Z) is kept with its items processed: an empty sequence is invalid
    // where the attribute is Type 3, and what is inside gets its own action and the scrubbing.
    if (action == "X/Z") return vr == EVR_SQ ? Act::kDummy : Act::kEmpty;
    if (action == "Z") return Act::kEmpty;
    if (action == "D" || action == "X/D" || action == "Z/D" || action == "X/Z/D") return Act::kDummy;
    if (action == "U") return Act::kUid;
    if (action == "X/Z/U*") return Act::kUidSequence;
    if (action == "C") return Act::kClean;
    throw Error(ErrorCode::kInternal, std::string("profile table: unknown action '") + action + "' for " + entry->name);
  }

  std::string Dummy(DcmEVR vr) const {
    switch (vr) {
      case EVR_DA: return "19000101";
      case EVR_TM: return "000000";
      case EVR_DT: return "19000101000000";
      case EVR_DS: case EVR_IS: return "0";
      case EVR_AS: return "000Y";
      case EVR_PN: return "ANONYMIZED";
      case EVR_AE: return "ANONYMIZED";
      default: return "ANONYMIZED";
    }
  }

  std::string RemapValues(const std::string& values) {
    return MapValues(values, [&](const std::string& uid) -> std::optional<std::string> {
      if (uid.empty()) return std::nullopt;
      const std::string mapped = RemapUid(o_.secret, o_.project, uid);
      out_.uid_map[uid] = mapped;
      return mapped;
    });
  }

  std::string ShiftDate(const std::string& date) const {
    if (date.size() < 8 || !std::all_of(date.begin(), date.begin() + 8, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      return "";
    }
    using namespace std::chrono;
    const year_month_day ymd{year{std::stoi(date.substr(0, 4))}, month{static_cast<unsigned>(std::stoi(date.substr(4, 2)))},
                             day{static_cast<unsigned>(std::stoi(date.substr(6, 2)))}};
    if (!ymd.ok()) return "";
    const year_month_day shifted{sys_days{ymd} - days{out_.date_shift_days}};
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%04d%02u%02u", static_cast<int>(shifted.year()), static_cast<unsigned>(shifted.month()),
                  static_cast<unsigned>(shifted.day()));
    return buffer + date.substr(8);
  }

  void Put(DcmElement* el, const std::string& value) {
    const OFCondition status = el->putString(value.c_str());
    Check(status, name_, "set " + std::string(DcmTag(el->getTag()).getTagName()));
  }

  // Every UID of a UI element replaced by its remapped value.
  void RemapElement(DcmElement* el) {
    OFString value;
    Check(el->getOFStringArray(value), name_, "read " + std::string(DcmTag(el->getTag()).getTagName()));
    Put(el, RemapValues(value.c_str()));
  }

  // `dummy_text`: inside a sequence the profile replaces (D) without a cleaning option, free text
  // (LT, ST, UT, UC, PN) that the table does not list is replaced as well: an SR's TEXT items and
  // person names cannot be cleaned reliably, only with Clean Structured Content (scrubbed then).
  void ProcessSequence(DcmElement* el, bool dummy_text) {
    auto* sq = static_cast<DcmSequenceOfItems*>(el);
    for (unsigned long k = 0; k < sq->card(); ++k) Process(*sq->getItem(k), dummy_text);
  }

  // Kept text loses PHI terms; kept sequences are processed item by item.
  void Keep(DcmElement* el, bool dummy_text) {
    const DcmEVR vr = el->ident();
    if (vr == EVR_SQ) {
      ProcessSequence(el, dummy_text);
      return;
    }
    if (dummy_text && (vr == EVR_LT || vr == EVR_ST || vr == EVR_UT || vr == EVR_UC || vr == EVR_PN)) {
      Put(el, Dummy(vr));
      ++out_.replaced;
      return;
    }
    if (vr == EVR_DA || vr == EVR_DT) {
      // A kept date that is the patient's birth date gives it away: dummy (or shifted) instead.
      OFString value;
      Check(el->getOFStringArray(value), name_, "read " + std::string(DcmTag(el->getTag()).getTagName()));
      const std::string v = value.c_str();
      const std::string& birth = out_.identity.birth_date;
      if (birth.size() == 8 && v.find(birth) != std::string::npos) {
        Put(el, o_.dates == Dates::kModified ? ShiftDate(v) : Dummy(vr));
        ++out_.replaced;
      }
      return;
    }
    if (!IsText(vr) || vr == EVR_TM) return;
    OFString value;
    Check(el->getOFStringArray(value), name_, "read " + std::string(DcmTag(el->getTag()).getTagName()));
    std::string v = value.c_str();
    // Code strings allow only upper case, digits, space and underscore.
    const bool code = vr == EVR_CS || vr == EVR_AE || vr == EVR_IS || vr == EVR_DS || vr == EVR_AS;
    if (Scrub(v, code ? 'X' : '*')) {
      Put(el, v);
      ++out_.scrubbed;
    }
  }

  void Process(DcmItem& item, bool dummy_text) {
    std::vector<DcmTagKey> tags;
    for (unsigned long i = 0; i < item.card(); ++i) tags.push_back(item.getElement(i)->getTag());
    for (const auto& tag : tags) {
      DcmElement* el = nullptr;
      if (item.findAndGetElement(tag, el, OFFalse).bad() || el == nullptr) continue;
      Act act = Resolve(item, tag, el->ident());
      const DcmEVR vr = el->ident();
      switch (act) {
        case Act::kKeep:
          Keep(el, dummy_text);
          break;
        case Act::kRemove:
          item.findAndDeleteElement(tag);
          ++out_.removed;
          break;
        case Act::kEmpty:
          if (vr == EVR_SQ) {
            static_cast<DcmSequenceOfItems*>(el)->clear();
          } else {
            el->clear();
          }
          ++out_.emptied;
          break;
        case Act::kDummy:
          if (vr == EVR_SQ) {
            ProcessSequence(el, true);
          } else if (vr == EVR_UI) {
            RemapElement(el);
          } else if (IsText(vr)) {
            Put(el, (vr == EVR_DA || vr == EVR_DT) && o_.dates == Dates::kModified ? ShiftDate(DicomString(item, tag)) : Dummy(vr));
          } else {
            el->clear();
          }
          ++out_.replaced;
          break;
        case Act::kUid:
          if (vr == EVR_SQ) {
            ProcessSequence(el, dummy_text);
          } else {
            RemapElement(el);
          }
          ++out_.remapped;
          break;
        case Act::kUidSequence:
          if (vr == EVR_SQ) {
            ProcessSequence(el, dummy_text);
          } else {
            el->clear();
          }
          ++out_.remapped;
          break;
        case Act::kClean:
          if (vr == EVR_SQ) {
            ProcessSequence(el, false);  // Clean Structured Content / Graphics: kept, scrubbed
          } else if (vr == EVR_DA || vr == EVR_DT) {
            Put(el, o_.dates == Dates::kModified ? ShiftDate(DicomString(item, tag)) : "");
          } else if (vr == EVR_TM) {
            // Times stay with modified dates (the shift is whole days).
          } else {
            Keep(el, false);
          }
          ++out_.cleaned;
          break;
      }
    }
    // Private creators whose blocks were emptied go too.
    for (unsigned long i = 0; i < item.card();) {
      const DcmTagKey tag = item.getElement(i)->getTag();
      if (tag.getGroup() % 2 == 1 && tag.getElement() >= 0x0010 && tag.getElement() <= 0x00FF) {
        bool used = false;
        for (unsigned long j = 0; j < item.card() && !used; ++j) {
          const DcmTagKey other = item.getElement(j)->getTag();
          used = other.getGroup() == tag.getGroup() && (other.getElement() >> 8) == tag.getElement();
        }
        if (!used) {
          delete item.remove(i);
          ++out_.removed;
          continue;
        }
      }
      ++i;
    }
  }

  void Mark(DcmDataset& ds) {
    Check(ds.putAndInsertString(DCM_PatientName, out_.pseudonym.c_str()), name_, "write the pseudonym as PatientName");
    Check(ds.putAndInsertString(DCM_PatientID, out_.pseudonym.c_str()), name_, "write the pseudonym as PatientID");
    Check(ds.putAndInsertString(DCM_PatientIdentityRemoved, "YES"), name_, "write PatientIdentityRemoved");
    std::vector<std::pair<const char*, const char*>> codes{{"113100", "Basic Application Confidentiality Profile"}};
    std::string method = "procnode " + std::string(kVersion) + ": PS3.15 E.1-1 (" + ProfileTable().edition + ") Basic Profile";
    auto option = [&](bool on, const char* code, const char* meaning) {
      if (!on) return;
      codes.emplace_back(code, meaning);
      method += std::string(", ") + meaning;
    };
    option(pixels_cleaned_, "113101", "Clean Pixel Data Option");
    option(o_.allow_recognizable_visual_features, "113102", "Clean Recognizable Visual Features Option");
    option(o_.clean_graphics, "113103", "Clean Graphics Option");
    option(o_.clean_structured_content, "113104", "Clean Structured Content Option");
    option(o_.clean_descriptors, "113105", "Clean Descriptors Option");
    option(o_.dates == Dates::kFull, "113106", "Retain Longitudinal Temporal Information Full Dates Option");
    option(o_.dates == Dates::kModified, "113107", "Retain Longitudinal Temporal Information Modified Dates Option");
    option(o_.retain_patient_characteristics, "113108", "Retain Patient Characteristics Option");
    option(o_.retain_device_identity, "113109", "Retain Device Identity Option");
    option(o_.retain_uids, "113110", "Retain UIDs Option");
    option(o_.retain_safe_private, "113111", "Retain Safe Private Option");
    option(o_.retain_institution_identity, "113112", "Retain Institution Identity Option");
    // DeidentificationMethod is LO (64 characters, VM 1-n): the method in 64-character values.
    std::string values;
    for (std::size_t at = 0; at < method.size(); at += 64) values += (values.empty() ? "" : "\\") + method.substr(at, 64);
    Check(ds.putAndInsertString(DCM_DeidentificationMethod, values.c_str()), name_, "write DeidentificationMethod");
    CheckDeleted(ds.findAndDeleteElement(DCM_DeidentificationMethodCodeSequence), name_,
                 "replace DeidentificationMethodCodeSequence");
    for (std::size_t i = 0; i < codes.size(); ++i) {
      DcmItem* code = nullptr;
      const std::string what = "write DeidentificationMethodCodeSequence item " + std::to_string(i + 1);
      Check(ds.findOrCreateSequenceItem(DCM_DeidentificationMethodCodeSequence, code, static_cast<signed long>(i)), name_, what);
      if (code == nullptr) Check(EC_IllegalCall, name_, what);
      Check(code->putAndInsertString(DCM_CodeValue, codes[i].first), name_, what);
      Check(code->putAndInsertString(DCM_CodingSchemeDesignator, "DCM"), name_, what);
      Check(code->putAndInsertString(DCM_CodeMeaning, codes[i].second), name_, what);
    }
    Check(ds.putAndInsertString(DCM_LongitudinalTemporalInformationModified,
                                o_.dates == Dates::kFull ? "UNMODIFIED" : o_.dates == Dates::kModified ? "MODIFIED" : "REMOVED"),
          name_, "write LongitudinalTemporalInformationModified");
    out_.method = method;
    for (const auto& [term, prepared] : terms_) out_.phi_terms.push_back(term);
  }

  const DeidentifyOptions& o_;
  std::string name_;
  std::map<ProfileOption, bool> enabled_;
  std::vector<std::pair<std::string, NameTerm>> terms_;  // as found (UTF-8), prepared for matching
  bool pixels_cleaned_ = false;
  DeidentifyOutcome out_;
};

}  // namespace

std::vector<PixelCleaningRule> ParsePixelRules(const std::string& json_text) {
  std::vector<PixelCleaningRule> rules;
  if (json_text.empty()) return rules;
  const auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (!json.is_array()) throw Error(ErrorCode::kInvalidInput, "Clean Pixel Data rules: expected a JSON list");
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& r = json[i];
    const std::string where = "Clean Pixel Data rule " + std::to_string(i + 1);
    if (!r.is_object() || !r.contains("Rows") || !r.contains("Columns") || !r.contains("Regions") || !r["Regions"].is_array()) {
      throw Error(ErrorCode::kInvalidInput, where + ": needs Rows, Columns and Regions");
    }
    PixelCleaningRule rule{r.value("Manufacturer", ""), r.value("Model", ""), r["Rows"].get<long>(), r["Columns"].get<long>(), {}};
    for (const auto& region : r["Regions"]) {
      if (!region.is_array() || region.size() != 4) throw Error(ErrorCode::kInvalidInput, where + ": a region is [x0, y0, x1, y1]");
      rule.regions.push_back({region[0].get<long>(), region[1].get<long>(), region[2].get<long>(), region[3].get<long>()});
    }
    rules.push_back(rule);
  }
  return rules;
}

namespace {

struct NamedOption {
  const char* name;
  void (*apply)(DeidentifyOptions&);
};
constexpr NamedOption kNamedOptions[] = {
    {"retain-safe-private", [](DeidentifyOptions& o) { o.retain_safe_private = true; }},
    {"retain-uids", [](DeidentifyOptions& o) { o.retain_uids = true; }},
    {"retain-device-identity", [](DeidentifyOptions& o) { o.retain_device_identity = true; }},
    {"retain-institution-identity", [](DeidentifyOptions& o) { o.retain_institution_identity = true; }},
    {"retain-patient-characteristics", [](DeidentifyOptions& o) { o.retain_patient_characteristics = true; }},
    {"full-dates", [](DeidentifyOptions& o) { o.dates = DeidentifyOptions::Dates::kFull; }},
    {"modified-dates", [](DeidentifyOptions& o) { o.dates = DeidentifyOptions::Dates::kModified; }},
    {"clean-descriptors", [](DeidentifyOptions& o) { o.clean_descriptors = true; }},
    {"clean-structured-content", [](DeidentifyOptions& o) { o.clean_structured_content = true; }},
    {"clean-graphics", [](DeidentifyOptions& o) { o.clean_graphics = true; }},
    {"allow-recognizable-features", [](DeidentifyOptions& o) { o.allow_recognizable_visual_features = true; }},
};

}  // namespace

std::vector<std::string> AnonymizationOptionNames() {
  std::vector<std::string> names;
  for (const auto& option : kNamedOptions) names.emplace_back(option.name);
  return names;
}

void ApplyOptionName(const std::string& name, DeidentifyOptions& options) {
  const auto it = std::find_if(std::begin(kNamedOptions), std::end(kNamedOptions),
                               [&](const NamedOption& option) { return name == option.name; });
  if (it == std::end(kNamedOptions)) throw Error(ErrorCode::kInvalidInput, "anonymization option '" + name + "' is unknown");
  it->apply(options);
}

void ApplyOptionNames(const std::string& names, DeidentifyOptions& options) {
  for (const std::string& name : Split(names, ',')) {
    if (!name.empty()) ApplyOptionName(name, options);
  }
}

DeidentifyOutcome Deidentify(DcmFileFormat& file, const DeidentifyOptions& options, const std::string& name) {
  if (options.project.empty()) throw Error(ErrorCode::kInvalidInput, "anonymization needs a project name");
  return Deidentifier(options, name).Run(file);
}

std::string WriteDeidentified(DcmFileFormat& file, const std::string& name) {
  const E_TransferSyntax xfer = file.getDataset()->getOriginalXfer();
  if (xfer == EXS_Unknown) return WriteDicomBuffer(file, name);
  OFString syntax;  // as received (writing replaces the meta header's)
  if (file.getMetaInfo() != nullptr) file.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, syntax);
  try {
    return WriteDicomBuffer(file, name, xfer);
  } catch (const Error& first) {
    // Native pixel data can usually go out as Explicit VR Little Endian (e.g. from a deflated
    // syntax DCMTK will not write back); compressed data that DCMTK cannot write stays refused.
    const std::string why = name + ": cannot be written back in its transfer syntax " +
                            (syntax.empty() ? std::string(DcmXfer(xfer).getXferName()) : std::string(syntax.c_str())) + " (" +
                            first.what() + ")";
    if (DcmXfer(xfer).isEncapsulated()) throw Error(ErrorCode::kUnsupported, why);
    try {
      return WriteDicomBuffer(file, name);
    } catch (const Error&) {
      throw Error(ErrorCode::kUnsupported, why);
    }
  }
}

namespace {

void RestoreUids(DcmItem& item, const std::map<std::string, std::string>& back) {
  for (unsigned long i = 0; i < item.card(); ++i) {
    DcmElement* el = item.getElement(i);
    if (el->ident() == EVR_SQ) {
      auto* sq = static_cast<DcmSequenceOfItems*>(el);
      for (unsigned long k = 0; k < sq->card(); ++k) RestoreUids(*sq->getItem(k), back);
      continue;
    }
    if (el->ident() != EVR_UI) continue;
    OFString value;
    Check(el->getOFStringArray(value), "re-identification", "read " + std::string(DcmTag(el->getTag()).getTagName()));
    bool changed = false;
    const std::string restored = MapValues(value.c_str(), [&](const std::string& uid) -> std::optional<std::string> {
      const auto it = back.find(uid);
      if (it == back.end()) return uid;
      changed = true;
      return it->second;
    });
    if (changed) Check(el->putString(restored.c_str()), "re-identification", "restore " + std::string(DcmTag(el->getTag()).getTagName()));
  }
}

}  // namespace

void Reidentify(DcmItem& dataset, const PatientIdentity& identity, const std::map<std::string, std::string>& remapped_to_original) {
  RestoreUids(dataset, remapped_to_original);
  const std::pair<DcmTagKey, const std::string*> fields[] = {
      {DCM_PatientName, &identity.patient_name},       {DCM_PatientID, &identity.patient_id},
      {DCM_PatientBirthDate, &identity.birth_date},    {DCM_PatientSex, &identity.sex},
      {DCM_AccessionNumber, &identity.accession_number}, {DCM_StudyDate, &identity.study_date},
      {DCM_StudyInstanceUID, &identity.study_instance_uid}};
  for (const auto& [tag, value] : fields) {
    Check(dataset.putAndInsertString(tag, value->c_str()), "re-identification", "write " + std::string(DcmTag(tag).getTagName()));
  }
  CheckDeleted(dataset.findAndDeleteElement(DCM_PatientIdentityRemoved), "re-identification", "remove PatientIdentityRemoved");
}

}  // namespace procnode
