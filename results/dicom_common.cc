#include "results/dicom_common.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/ofstd/ofdatime.h>

#include "core/error.h"

namespace procnode {

void PutAttribute(DcmItem& item, const DcmTagKey& tag, const std::string& value, const char* object) {
  const OFCondition status = item.putAndInsertOFStringArray(tag, value.c_str());
  if (status.bad()) {
    throw Error(ErrorCode::kInternal, std::string(object) + ": cannot set " + DcmTag(tag).getTagName() + ": " + status.text());
  }
}

void CheckDcmtk(const OFCondition& status, const char* object, const char* what) {
  if (status.bad()) throw Error(ErrorCode::kInternal, std::string(object) + ": " + what + ": " + status.text());
}

void PutStudyIdentity(DcmItem& item, const StudyIdentity& study, const char* object) {
  if (!study.specific_character_set.empty()) PutAttribute(item, DCM_SpecificCharacterSet, study.specific_character_set, object);
  PutAttribute(item, DCM_PatientName, study.patient_name, object);
  PutAttribute(item, DCM_PatientID, study.patient_id, object);
  PutAttribute(item, DCM_PatientBirthDate, study.patient_birth_date, object);
  PutAttribute(item, DCM_PatientSex, study.patient_sex, object);
  PutAttribute(item, DCM_StudyInstanceUID, study.study_instance_uid, object);
  PutAttribute(item, DCM_StudyDate, study.study_date, object);
  PutAttribute(item, DCM_StudyTime, study.study_time, object);
  PutAttribute(item, DCM_ReferringPhysicianName, study.referring_physician_name, object);
  PutAttribute(item, DCM_StudyID, study.study_id, object);
  PutAttribute(item, DCM_AccessionNumber, study.accession_number, object);
}

DicomNow CurrentDicomDateTime() {
  const OFDateTime now = OFDateTime::getCurrentDateTime();
  OFString date, time;
  now.getDate().getISOFormattedDate(date, false);
  now.getTime().getISOFormattedTime(time, true, false, false, false);
  return {date.c_str(), time.c_str()};
}

}  // namespace procnode
