#include "results/segmentation.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/cielabutil.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "core/digest.h"
#include "core/error.h"
#include "core/parallel.h"
#include "dicom/io.h"
#include "results/dicom_common.h"

namespace procnode {
namespace {

constexpr const char* kObject = "SEG";

void Check(const OFCondition& status, const char* what) { CheckDcmtk(status, kObject, what); }


CodeSequenceMacro Coded(const Code& code) { return CodeSequenceMacro(code.value.c_str(), code.scheme.c_str(), code.meaning.c_str()); }

double Dot(const std::array<double, 3>& a, const std::array<double, 3>& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

}  // namespace

SegmentationResult MakeSegmentation(const SegmentationSpec& spec, const Volume& volume, const std::vector<uint8_t>& labels) {
  if (spec.sources.empty()) throw Error(ErrorCode::kInvalidInput, "SEG: no source instances");
  if (labels.size() != volume.VoxelCount()) throw Error(ErrorCode::kInvalidInput, "SEG: the labels do not match the volume");
  const SourceInstance& first = spec.sources.front();
  for (const auto& s : spec.sources) {
    if (s.frames != 1 || !s.position || !s.orientation || s.rows != first.rows || s.columns != first.columns) {
      throw Error(ErrorCode::kUnsupported, "SEG: source instance " + s.sop_instance_uid.substr(0, 0) +
                                               "is multi-frame, lacks a plane position, or differs in size; only single-frame "
                                               "series of one size are supported");
    }
  }
  // Sources sorted along the slice normal: their position index is a dimension index value.
  std::vector<const SourceInstance*> sorted;
  for (const auto& s : spec.sources) sorted.push_back(&s);
  const auto& o = *first.orientation;
  const std::array<double, 3> normal{o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](const SourceInstance* a, const SourceInstance* b) { return Dot(*a->position, normal) < Dot(*b->position, normal); });

  DcmSegmentation* raw = nullptr;
  Check(DcmSegmentation::createBinarySegmentation(
            raw, static_cast<Uint16>(first.rows), static_cast<Uint16>(first.columns),
            IODGeneralEquipmentModule::EquipmentInfo(kResultManufacturer, "1", "procnode", spec.software_version.c_str()),
            ContentIdentificationMacro("1", "SEGMENTATION", spec.series_description.c_str(), "procnode")),
        "create");
  std::unique_ptr<DcmSegmentation> seg(raw);

  // Patient, study and Frame of Reference from the source.
  DcmItem source;
  PutStudyIdentity(source, spec.study, kObject);
  if (!first.frame_of_reference_uid.empty()) PutAttribute(source, DCM_FrameOfReferenceUID, first.frame_of_reference_uid, kObject);
  Check(seg->importFromSourceImage(source, OFTrue), "import patient, study and frame of reference");
  Check(seg->getSeries().setSeriesInstanceUID(spec.series_instance_uid.c_str()), "SeriesInstanceUID");
  Check(seg->getSeries().setSeriesNumber(std::to_string(spec.series_number).c_str()), "SeriesNumber");
  Check(seg->getSeries().setSeriesDescription(spec.series_description.c_str()), "SeriesDescription");
  Check(seg->getSOPCommon().setSOPInstanceUID(spec.sop_instance_uid.c_str()), "SOPInstanceUID");
  const DicomNow now = CurrentDicomDateTime();
  Check(seg->getSeries().setSeriesDate(now.date.c_str()), "SeriesDate");
  Check(seg->getSeries().setSeriesTime(now.time.c_str()), "SeriesTime");

  // Shared geometry: orientation and pixel measures of the source.
  FGPlaneOrientationPatient* orientation =
      FGPlaneOrientationPatient::createMinimal(DecimalString(o[0]).c_str(), DecimalString(o[1]).c_str(), DecimalString(o[2]).c_str(),
                                               DecimalString(o[3]).c_str(), DecimalString(o[4]).c_str(), DecimalString(o[5]).c_str());
  if (!orientation) throw Error(ErrorCode::kInternal, "SEG: plane orientation");
  std::unique_ptr<FGPlaneOrientationPatient> orientation_owner(orientation);
  Check(seg->addForAllFrames(*orientation), "shared plane orientation");
  FGPixelMeasures measures;
  Check(measures.setPixelSpacing((DecimalString(first.pixel_spacing[0]) + "\\" + DecimalString(first.pixel_spacing[1])).c_str()), "PixelSpacing");
  double spacing = first.slice_thickness;
  if (sorted.size() > 1) spacing = std::abs(Dot(*sorted[1]->position, normal) - Dot(*sorted[0]->position, normal));
  if (first.slice_thickness > 0) Check(measures.setSliceThickness(DecimalString(first.slice_thickness).c_str()), "SliceThickness");
  if (spacing > 0) Check(measures.setSpacingBetweenSlices(DecimalString(spacing).c_str()), "SpacingBetweenSlices");
  Check(seg->addForAllFrames(measures), "shared pixel measures");

  // Dimensions: segment, then position.
  const OFString organization = DerivedUid("procnode/seg/dimension-organization", spec.sop_instance_uid).c_str();
  IODMultiframeDimensionModule& dimensions = seg->getDimensions();
  Check(dimensions.addDimensionIndex(DCM_ReferencedSegmentNumber, organization, DCM_SegmentIdentificationSequence,
                                     "ReferencedSegmentNumber"),
        "dimension index segment");
  Check(dimensions.addDimensionIndex(DCM_ImagePositionPatient, organization, DCM_PlanePositionSequence, "ImagePositionPatient"),
        "dimension index position");

  SegmentationResult result;
  result.segment_numbers.assign(spec.segments.size(), 0);
  const long rows = first.rows, columns = first.columns;
  std::vector<FrameMapping> mappings;
  for (const auto* s : sorted) mappings.push_back(MapFrame(*s, volume));
  std::vector<Uint8> frame(static_cast<std::size_t>(rows) * columns);
  const std::size_t nx = volume.dims[0], ny = volume.dims[1], nz = volume.dims[2];
  // Each source frame's label values, sampled once (in parallel), then split by segment.
  const std::size_t pixels = static_cast<std::size_t>(rows) * columns;
  std::vector<std::vector<Uint8>> sampled(sorted.size());
  ParallelFor(sorted.size(), [&](std::size_t f) {
    const FrameMapping& m = mappings[f];
    std::vector<Uint8> values(pixels, 0);
    bool any = false;
    for (long r = 0; r < rows; ++r) {
      for (long c = 0; c < columns; ++c) {
        const long xi = std::lround(m.base[0] + r * m.per_row[0] + c * m.per_column[0]);
        const long yi = std::lround(m.base[1] + r * m.per_row[1] + c * m.per_column[1]);
        const long zi = std::lround(m.base[2] + r * m.per_row[2] + c * m.per_column[2]);
        if (xi >= 0 && yi >= 0 && zi >= 0 && xi < static_cast<long>(nx) && yi < static_cast<long>(ny) && zi < static_cast<long>(nz)) {
          const Uint8 value = labels[(static_cast<std::size_t>(zi) * ny + yi) * nx + xi];
          values[static_cast<std::size_t>(r) * columns + c] = value;
          any = any || value != 0;
        }
      }
    }
    if (any) sampled[f] = std::move(values);
  });
  for (std::size_t k = 0; k < spec.segments.size(); ++k) {
    const SegmentDefinition& def = spec.segments[k];
    std::array<bool, 256> member{};
    for (const int value : def.label_values) member[static_cast<uint8_t>(value)] = true;
    // Frames with voxels of this segment.
    std::vector<std::pair<std::size_t, std::vector<Uint8>>> frames;
    for (std::size_t f = 0; f < sorted.size(); ++f) {
      if (sampled[f].empty()) continue;
      bool any = false;
      for (std::size_t i = 0; i < pixels; ++i) {
        frame[i] = member[sampled[f][i]] ? 1 : 0;
        any = any || frame[i];
      }
      if (any) frames.emplace_back(f, frame);
    }
    if (frames.empty()) {
      result.omitted.push_back(def.label);
      continue;
    }
    DcmSegment* segment = nullptr;
    Check(DcmSegment::create(segment, def.label.c_str(), Coded(def.category), Coded(def.type), DcmSegTypes::SAT_AUTOMATIC,
                             spec.algorithm_name.c_str()),
          "segment");
    AlgorithmIdentificationMacro& algorithm = segment->getSegmentationAlgorithmIdentification();
    Check(algorithm.setAlgorithmName(spec.algorithm_name.c_str()), "AlgorithmName");
    Check(algorithm.setAlgorithmVersion(spec.algorithm_version.c_str()), "AlgorithmVersion");
    Check(algorithm.getAlgorithmFamilyCode().set("123104", "DCM", "Morphological Operations"), "AlgorithmFamilyCode");
    double L = 0, a = 0, b = 0;
    IODCIELabUtil::rgb2DicomLab(L, a, b, def.rgb[0] / 255.0, def.rgb[1] / 255.0, def.rgb[2] / 255.0);
    Check(segment->setRecommendedDisplayCIELabValue(static_cast<Uint16>(L), static_cast<Uint16>(a), static_cast<Uint16>(b)),
          "RecommendedDisplayCIELabValue");
    Uint16 number = 0;
    const OFCondition added = seg->addSegment(segment, number);
    if (added.bad()) {
      delete segment;
      Check(added, "add segment");
    }
    result.segment_numbers[k] = number;
    for (auto& [f, data] : frames) {
      const SourceInstance& s = *sorted[f];
      FGFrameContent content;
      Check(content.setDimensionIndexValues(number, 0), "DimensionIndexValues");
      Check(content.setDimensionIndexValues(static_cast<Uint32>(f + 1), 1), "DimensionIndexValues");
      const auto& p = *s.position;
      std::unique_ptr<FGPlanePosPatient> position(
          FGPlanePosPatient::createMinimal(DecimalString(p[0]).c_str(), DecimalString(p[1]).c_str(), DecimalString(p[2]).c_str()));
      ImageSOPInstanceReferenceMacro reference;
      Check(reference.setReferencedSOPClassUID(s.sop_class_uid.c_str()), "ReferencedSOPClassUID");
      Check(reference.setReferencedSOPInstanceUID(s.sop_instance_uid.c_str()), "ReferencedSOPInstanceUID");
      std::unique_ptr<FGDerivationImage> derivation(
          DcmSegmentation::createDerivationImageFG(OFVector<ImageSOPInstanceReferenceMacro>(1, reference), "procnode segmentation"));
      if (!position || !derivation) throw Error(ErrorCode::kInternal, "SEG: per-frame functional groups");
      OFVector<FGBase*> groups;
      groups.push_back(&content);
      groups.push_back(position.get());
      groups.push_back(derivation.get());
      Check(seg->addFrame(data.data(), number, groups), "add frame");
      ++result.frames;
    }
  }
  if (result.frames == 0) throw Error(ErrorCode::kInvalidInput, "SEG: every segment is empty");

  // Common Instance Reference: the source series.
  IODReferences references;
  for (const auto* s : sorted) {
    references.add(new IODImageReference(spec.study.patient_id.c_str(), spec.study.study_instance_uid.c_str(),
                                         spec.source_series_instance_uid.c_str(), s->sop_instance_uid.c_str(),
                                         s->sop_class_uid.c_str()));
  }
  seg->getCommonInstanceReference().addReferences(references, spec.study.study_instance_uid.c_str());

  DcmFileFormat file;
  Check(seg->writeDataset(*file.getDataset()), "write");
  result.dicom = WriteDicomBuffer(file, "SEG");
  return result;
}

}  // namespace procnode
