#include "results/dicom_common.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/ofstd/ofdatime.h>

#include <cmath>
#include <cstdio>
#include <cstring>

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

namespace {
double Dot(const std::array<double, 3>& a, const std::array<double, 3>& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
}  // namespace

FrameMapping MapFrame(const SourceInstance& s, const Volume& v) {
  const auto& p = *s.position;
  const auto& o = *s.orientation;
  const std::array<double, 3> row_dir{o[0], o[1], o[2]}, col_dir{o[3], o[4], o[5]};
  const std::array<const std::array<double, 3>*, 3> axes{&v.row_direction, &v.column_direction, &v.slice_direction};
  FrameMapping m;
  for (int a = 0; a < 3; ++a) {
    const double spacing = std::abs(v.spacing[a]);
    m.base[a] = Dot({p[0] - v.origin[0], p[1] - v.origin[1], p[2] - v.origin[2]}, *axes[a]) / spacing;
    // Moving one row goes along the column direction by the row spacing, and vice versa.
    m.per_row[a] = Dot(col_dir, *axes[a]) * s.pixel_spacing[0] / spacing;
    m.per_column[a] = Dot(row_dir, *axes[a]) * s.pixel_spacing[1] / spacing;
  }
  return m;
}

std::string DecimalString(double value) {
  char buffer[40];
  for (int digits = 10; digits > 1; --digits) {
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
    if (std::strlen(buffer) <= 16) break;
  }
  return buffer;
}

DicomNow CurrentDicomDateTime() {
  const OFDateTime now = OFDateTime::getCurrentDateTime();
  OFString date, time;
  now.getDate().getISOFormattedDate(date, false);
  now.getTime().getISOFormattedTime(time, true, false, false, false);
  return {date.c_str(), time.c_str()};
}

}  // namespace procnode
