// De-identification of one DICOM object to PS3.15 Annex E: the Basic Application Level
// Confidentiality Profile from the compiled-in Table E.1-1 (profile_table.h) and its options,
// applied recursively into sequences.
//
// How actions are carried out: X removes; Z empties (a sequence loses its items); D replaces with
// a dummy of the right VR (a sequence is processed item by item); U remaps UIDs to
// 2.25.<HMAC(secret, project, uid)> (consistent across a study and a project's studies, and
// references inside sequences follow); C cleans: dates shift by the patient's offset (Modified
// Dates), text loses every PHI term found in the object, sequences are processed item by item;
// K keeps. Compound actions resolve to the one that keeps the object valid (X/Z -> Z, X/D, Z/D,
// X/Z/D -> D, X/Z/U* -> U*). Patient's Name and ID become the project's pseudonym. Every string
// that is kept is also scrubbed of the PHI terms collected from the object (names of every
// person, IDs, accession, birth date in its usual formats), so a name copied into a comment or a
// private text does not survive. Private attributes go, unless Retain Safe Private keeps those in
// the safe-private dictionary; overlays (60xx) and curves (50xx) go unless Clean Graphics.
// Marks: PatientIdentityRemoved YES, DeidentificationMethod (table edition and options),
// DeidentificationMethodCodeSequence (CID 7050), LongitudinalTemporalInformationModified.
// Refusals (Error kInvalidInput naming the object and the reason): BurnedInAnnotation YES without
// a Clean Pixel Data rule for its manufacturer, model and size; a 3D head MR or head CT unless
// recognizable visual features are allowed. Thread-safe (no shared state).
#pragma once

#include <dcmtk/dcmdata/dcfilefo.h>

#include <array>
#include <map>
#include <string>
#include <vector>

namespace procnode {

// Blank rectangles (x0, y0, x1, y1 inclusive, in pixels) of images from one device and size.
struct PixelCleaningRule {
  std::string manufacturer, model;  // as in (0008,0070), (0008,1090); empty matches any
  long rows = 0, columns = 0;
  std::vector<std::array<long, 4>> regions;
};

struct DeidentifyOptions {
  std::string project;
  std::string secret;  // never logged
  bool retain_safe_private = false;
  bool retain_uids = false;
  bool retain_device_identity = false;
  bool retain_institution_identity = false;
  bool retain_patient_characteristics = false;
  enum class Dates { kRemove, kFull, kModified } dates = Dates::kRemove;
  bool clean_descriptors = false;
  bool clean_structured_content = false;
  bool clean_graphics = false;
  std::vector<PixelCleaningRule> pixel_rules;       // Clean Pixel Data
  bool allow_recognizable_visual_features = false;  // 3D head volumes
};

// Clean Pixel Data rules from JSON: [{"Manufacturer": "...", "Model": "...", "Rows": 512,
// "Columns": 512, "Regions": [[x0, y0, x1, y1], ...]}]. Error(kInvalidInput) naming the entry.
std::vector<PixelCleaningRule> ParsePixelRules(const std::string& json_text);

// "retain-safe-private,retain-uids,retain-device-identity,retain-institution-identity,
// retain-patient-characteristics,full-dates|modified-dates,clean-descriptors,
// clean-structured-content,clean-graphics,allow-recognizable-features". Error(kInvalidInput)
// naming an unknown option. ApplyOptionName: one of them. AnonymizationOptionNames: all of them.
void ApplyOptionNames(const std::string& comma_separated, DeidentifyOptions& options);
void ApplyOptionName(const std::string& name, DeidentifyOptions& options);
std::vector<std::string> AnonymizationOptionNames();

// What the object said about its patient: PHI, for the vault and the leak checker only.
struct PatientIdentity {
  std::string patient_name, patient_id, birth_date, sex, accession_number, study_date, study_instance_uid;
};

struct DeidentifyOutcome {
  PatientIdentity identity;             // PHI
  std::vector<std::string> phi_terms;   // PHI: every term scrubbed from kept text
  std::string pseudonym;
  int date_shift_days = 0;              // Modified Dates: days subtracted from every date
  std::map<std::string, std::string> uid_map;  // original -> remapped (PHI-linked: vault only)
  std::size_t removed = 0, emptied = 0, replaced = 0, remapped = 0, cleaned = 0, scrubbed = 0;
  std::string method;                   // DeidentificationMethod written
};

DeidentifyOutcome Deidentify(DcmFileFormat& file, const DeidentifyOptions& options, const std::string& name);

// The Part 10 bytes of a de-identified object in its original transfer syntax.
std::string WriteDeidentified(DcmFileFormat& file, const std::string& name);

}  // namespace procnode

namespace procnode {

// Puts a pseudonymous object back on its patient: Patient and General Study identifiers from
// `identity`, and every UID found in `remapped_to_original` (at any depth: references, Frame of
// Reference, study) replaced by its original. UIDs not in the map (the object's own) are kept.
// For results computed on an anonymized route that go back to the clinical study.
void Reidentify(DcmItem& dataset, const PatientIdentity& identity, const std::map<std::string, std::string>& remapped_to_original);

}  // namespace procnode
