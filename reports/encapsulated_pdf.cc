#include "reports/encapsulated_pdf.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/ofstd/ofdatime.h>

#include "core/error.h"
#include "core/study.h"
#include "processors/dicom_io.h"

namespace procnode {
namespace {

void Put(DcmItem& item, const DcmTagKey& tag, const std::string& value) {
  const OFCondition status = item.putAndInsertOFStringArray(tag, value.c_str());
  if (status.bad()) {
    throw Error(ErrorCode::kInternal, "Encapsulated PDF: cannot set " +
                                          std::string(DcmTag(tag).getTagName()) + ": " + status.text());
  }
}

void Check(const OFCondition& status, const char* what) {
  if (status.bad()) throw Error(ErrorCode::kInternal, std::string("Encapsulated PDF: ") + what + ": " + status.text());
}

}  // namespace

std::string MakeEncapsulatedPdf(const EncapsulatedPdfSpec& spec) {
  if (spec.pdf.size() < 5 || spec.pdf.compare(0, 5, "%PDF-") != 0) {
    throw Error(ErrorCode::kInternal, "Encapsulated PDF: the document is not a PDF");
  }
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  const StudyIdentity& study = spec.study;

  OFDateTime now = OFDateTime::getCurrentDateTime();
  OFString date, time;
  now.getDate().getISOFormattedDate(date, false);
  now.getTime().getISOFormattedTime(time, true, false, false, false);

  // SOP Common (C.12.1)
  if (!study.specific_character_set.empty()) Put(ds, DCM_SpecificCharacterSet, study.specific_character_set);
  Put(ds, DCM_SOPClassUID, UID_EncapsulatedPDFStorage);
  Put(ds, DCM_SOPInstanceUID, spec.sop_instance_uid);
  Put(ds, DCM_InstanceCreationDate, date.c_str());
  Put(ds, DCM_InstanceCreationTime, time.c_str());
  // Patient (C.7.1.1) and General Study (C.7.2.1), copied from the source study
  Put(ds, DCM_PatientName, study.patient_name);
  Put(ds, DCM_PatientID, study.patient_id);
  Put(ds, DCM_PatientBirthDate, study.patient_birth_date);
  Put(ds, DCM_PatientSex, study.patient_sex);
  Put(ds, DCM_StudyInstanceUID, study.study_instance_uid);
  Put(ds, DCM_StudyDate, study.study_date);
  Put(ds, DCM_StudyTime, study.study_time);
  Put(ds, DCM_ReferringPhysicianName, study.referring_physician_name);
  Put(ds, DCM_StudyID, study.study_id);
  Put(ds, DCM_AccessionNumber, study.accession_number);
  // Encapsulated Document Series (C.24.1)
  Put(ds, DCM_Modality, "DOC");
  Put(ds, DCM_SeriesInstanceUID, spec.series_instance_uid);
  Put(ds, DCM_SeriesNumber, std::to_string(spec.series_number));
  Put(ds, DCM_SeriesDescription, spec.series_description);
  // General Equipment (C.7.5.1): the marker that keeps results from becoming inputs
  Put(ds, DCM_Manufacturer, kResultManufacturer);
  Put(ds, DCM_SoftwareVersions, spec.software_version);
  // SC Equipment (C.8.6.1)
  Put(ds, DCM_ConversionType, "WSD");
  // Encapsulated Document (C.24.2)
  Put(ds, DCM_InstanceNumber, "1");
  Put(ds, DCM_ContentDate, date.c_str());
  Put(ds, DCM_ContentTime, time.c_str());
  Put(ds, DCM_AcquisitionDateTime, (date + time).c_str());
  Put(ds, DCM_BurnedInAnnotation, "NO");
  Put(ds, DCM_DocumentTitle, spec.document_title);
  Check(ds.insertEmptyElement(DCM_ConceptNameCodeSequence), "ConceptNameCodeSequence");
  Put(ds, DCM_MIMETypeOfEncapsulatedDocument, "application/pdf");
  for (const auto& source : spec.sources) {
    DcmItem* item = nullptr;
    Check(ds.findOrCreateSequenceItem(DCM_SourceInstanceSequence, item, -2), "SourceInstanceSequence");
    Put(*item, DCM_ReferencedSOPClassUID, source.sop_class_uid);
    Put(*item, DCM_ReferencedSOPInstanceUID, source.sop_instance_uid);
  }
  std::string document = spec.pdf;
  Check(ds.putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(document.size())),
        "EncapsulatedDocumentLength");
  if (document.size() % 2 != 0) document.push_back('\0');  // OB values have even length
  Check(ds.putAndInsertUint8Array(DCM_EncapsulatedDocument,
                                  reinterpret_cast<const Uint8*>(document.data()),
                                  static_cast<unsigned long>(document.size())),
        "EncapsulatedDocument");
  return WriteDicomBuffer(file, "Encapsulated PDF " + spec.sop_instance_uid);
}

}  // namespace procnode
