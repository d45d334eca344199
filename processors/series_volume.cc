#include "processors/series_volume.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include "core/error.h"
#include "dicom/image.h"
#include "dicom/attributes.h"
#include "dicom/io.h"

namespace procnode {
namespace {

StudyIdentity IdentityOf(DcmDataset& ds, const std::string& name) {
  StudyIdentity id;
  id.specific_character_set = DicomString(ds, DCM_SpecificCharacterSet);
  id.patient_name = DicomString(ds, DCM_PatientName);
  id.patient_id = DicomString(ds, DCM_PatientID);
  id.patient_birth_date = DicomString(ds, DCM_PatientBirthDate);
  id.patient_sex = DicomString(ds, DCM_PatientSex);
  id.study_instance_uid = DicomString(ds, DCM_StudyInstanceUID);
  id.study_date = DicomString(ds, DCM_StudyDate);
  id.study_time = DicomString(ds, DCM_StudyTime);
  id.referring_physician_name = DicomString(ds, DCM_ReferringPhysicianName);
  id.study_id = DicomString(ds, DCM_StudyID);
  id.accession_number = DicomString(ds, DCM_AccessionNumber);
  if (id.study_instance_uid.empty()) throw Error(ErrorCode::kInvalidInput, name + ": StudyInstanceUID missing");
  return id;
}

}  // namespace

StudyIdentity ReadStudyIdentity(StudySource& source, const std::string& instance_id, const std::vector<std::string>& acquisition_keywords,
                                std::map<std::string, std::string>* acquisition) {
  const std::string name = "instance " + instance_id;
  auto file = ReadInstance(source, instance_id, name);
  DcmDataset& ds = *file->getDataset();
  for (const auto& keyword : acquisition_keywords) {
    const auto number = acquisition == nullptr ? std::nullopt : DicomKeywordToTag(keyword);
    if (!number) continue;
    OFString value;
    if (ds.findAndGetOFStringArray(TagKey(*number), value).good() && !value.empty()) (*acquisition)[keyword] = value.c_str();
  }
  return IdentityOf(ds, name);
}

const std::vector<std::string>& AcquisitionKeywords() {
  static const std::vector<std::string> keywords{
      // General Series (C.7.3.1)
      "PatientPosition", "BodyPartExamined",
      // MR Image (C.8.3.1)
      "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "SequenceName", "AngioFlag", "RepetitionTime",
      "EchoTime", "InversionTime", "EchoTrainLength", "NumberOfAverages", "ImagingFrequency", "ImagedNucleus", "EchoNumbers",
      "MagneticFieldStrength", "FlipAngle", "PixelBandwidth", "PercentSampling", "PercentPhaseFieldOfView",
      "InPlanePhaseEncodingDirection", "AcquisitionMatrix",
      // CT Image (C.8.2.1)
      "KVP", "ConvolutionKernel", "XRayTubeCurrent", "ExposureTime", "Exposure", "FilterType", "DataCollectionDiameter",
      "ReconstructionDiameter", "GantryDetectorTilt"};
  return keywords;
}

const SeriesRef& LargestInputSeries(const std::vector<SeriesRef>& series) {
  const SeriesRef* best = nullptr;
  for (const auto& s : series) {
    if (s.produced_by_procnode || s.instance_ids.empty()) continue;
    if (best == nullptr || s.instance_ids.size() > best->instance_ids.size()) best = &s;
  }
  if (best == nullptr) throw Error(ErrorCode::kNotFound, "the study has no input series");
  return *best;
}

}  // namespace procnode
