// The benchmark's peer: a straightforward ITK 5.2 pipeline doing the lung processor's steps
// (bench only; never linked into procnode). DICOM folder -> labels NIfTI + measurements JSON:
//   air < -500 HU; body = largest component of tissue with its per-slice holes filled; lung
//   fields = air in the body; trachea seeded in the top slices and region-grown below an upper
//   threshold lowered until it stops leaking; airways dilated and removed; lung components
//   sided by centroid, split by in-plane erosion and regrown when they touch; per-slice hole
//   filling per lung; emphysema < -950 HU; clusters; histogram densitometry.
// Usage: itk_lung DICOM_DIR OUT_DIR
#include <itkAndImageFilter.h>
#include <itkBinaryBallStructuringElement.h>
#include <itkBinaryDilateImageFilter.h>
#include <itkBinaryErodeImageFilter.h>
#include <itkBinaryFillholeImageFilter.h>
#include <itkBinaryThresholdImageFilter.h>
#include <itkConnectedComponentImageFilter.h>
#include <itkConnectedThresholdImageFilter.h>
#include <itkGDCMImageIO.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkGrayscaleDilateImageFilter.h>
#include <itkImageFileWriter.h>
#include <itkImageRegionConstIterator.h>
#include <itkImageSeriesReader.h>
#include <itkLabelImageToShapeLabelMapFilter.h>
#include <itkRelabelComponentImageFilter.h>
#include <itkSliceBySliceImageFilter.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <vector>

namespace {

using CtImage = itk::Image<short, 3>;
using Mask = itk::Image<unsigned char, 3>;
using Labels = itk::Image<unsigned int, 3>;

template <typename Filter>
typename Filter::OutputImageType::Pointer Run(typename Filter::Pointer filter) {
  filter->Update();
  typename Filter::OutputImageType::Pointer out = filter->GetOutput();  // held before disconnecting
  out->DisconnectPipeline();
  return out;
}

Mask::Pointer Threshold(const CtImage* ct, short lower, short upper) {
  auto f = itk::BinaryThresholdImageFilter<CtImage, Mask>::New();
  f->SetInput(ct);
  f->SetLowerThreshold(lower);
  f->SetUpperThreshold(upper);
  f->SetInsideValue(1);
  f->SetOutsideValue(0);
  return Run<itk::BinaryThresholdImageFilter<CtImage, Mask>>(f);
}

Mask::Pointer And(const Mask* a, const Mask* b) {
  auto f = itk::AndImageFilter<Mask, Mask, Mask>::New();
  f->SetInput1(a);
  f->SetInput2(b);
  return Run<itk::AndImageFilter<Mask, Mask, Mask>>(f);
}

// Components sorted by size (1 = largest), fully connected = false (face connectivity).
Labels::Pointer Components(const Mask* mask, std::size_t* count = nullptr) {
  auto cc = itk::ConnectedComponentImageFilter<Mask, Labels>::New();
  cc->SetInput(mask);
  cc->FullyConnectedOff();
  auto relabel = itk::RelabelComponentImageFilter<Labels, Labels>::New();
  relabel->SetInput(cc->GetOutput());
  relabel->Update();
  if (count) *count = relabel->GetNumberOfObjects();
  Labels::Pointer out = relabel->GetOutput();
  out->DisconnectPipeline();
  return out;
}

Mask::Pointer FillHolesPerSlice(const Mask* mask) {
  using Fill2D = itk::BinaryFillholeImageFilter<itk::Image<unsigned char, 2>>;
  auto slices = itk::SliceBySliceImageFilter<Mask, Mask>::New();
  auto fill = Fill2D::New();
  fill->SetForegroundValue(1);
  slices->SetFilter(fill);
  slices->SetInput(mask);
  return Run<itk::SliceBySliceImageFilter<Mask, Mask>>(slices);
}

Mask::Pointer Select(const Labels* labels, unsigned int lo, unsigned int hi) {
  auto f = itk::BinaryThresholdImageFilter<Labels, Mask>::New();
  f->SetInput(labels);
  f->SetLowerThreshold(lo);
  f->SetUpperThreshold(hi);
  f->SetInsideValue(1);
  f->SetOutsideValue(0);
  return Run<itk::BinaryThresholdImageFilter<Labels, Mask>>(f);
}

using ShapeMap = itk::LabelMap<itk::ShapeLabelObject<unsigned int, 3>>;

ShapeMap::Pointer Shapes(const Labels* labels) {
  auto f = itk::LabelImageToShapeLabelMapFilter<Labels, ShapeMap>::New();
  f->SetInput(labels);
  f->Update();
  ShapeMap::Pointer out = f->GetOutput();
  out->DisconnectPipeline();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: itk_lung DICOM_DIR OUT_DIR\n";
    return 2;
  }
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetDirectory(argv[1]);
  const auto uids = names->GetSeriesUIDs();
  if (uids.empty()) {
    std::cerr << "no DICOM series in " << argv[1] << "\n";
    return 2;
  }
  auto reader = itk::ImageSeriesReader<CtImage>::New();
  reader->SetImageIO(itk::GDCMImageIO::New());
  reader->SetFileNames(names->GetFileNames(uids.front()));
  reader->Update();
  CtImage::Pointer ct = reader->GetOutput();
  const auto size = ct->GetLargestPossibleRegion().GetSize();
  const auto spacing = ct->GetSpacing();
  const double voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0;

  // Body and lung fields.
  auto air = Threshold(ct, -32768, -501);
  auto tissue = Threshold(ct, -500, 32767);
  auto body = Select(Components(FillHolesPerSlice(tissue)), 1, 1);
  auto fields = And(air, body);

  // Trachea: the largest central air cross-section of 80..700 mm2 in the top half, from the top.
  // ITK's slice order follows the image's z; the top is the highest physical z.
  const bool top_is_last = ct->GetDirection()[2][2] * spacing[2] > 0;
  CtImage::IndexType seed{};
  bool found = false;
  for (unsigned t = 0; t < size[2] / 2 && !found; ++t) {
    const long z = top_is_last ? static_cast<long>(size[2]) - 1 - t : t;
    // In-plane components of this slice: a 2D labelling by flood fill over the fields mask.
    std::vector<int> seen(size[0] * size[1], 0);
    double best = 0;
    for (unsigned y = 0; y < size[1]; ++y) {
      for (unsigned x = 0; x < size[0]; ++x) {
        if (seen[y * size[0] + x] || !fields->GetPixel({{x, y, z}})) continue;
        std::vector<std::pair<unsigned, unsigned>> stack{{x, y}}, members;
        seen[y * size[0] + x] = 1;
        double sum_hu = 0;
        while (!stack.empty()) {
          auto [px, py] = stack.back();
          stack.pop_back();
          members.push_back({px, py});
          sum_hu += ct->GetPixel({{px, py, z}});
          const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
          for (int k = 0; k < 4; ++k) {
            const long nx = static_cast<long>(px) + dx[k], ny = static_cast<long>(py) + dy[k];
            if (nx < 0 || ny < 0 || nx >= static_cast<long>(size[0]) || ny >= static_cast<long>(size[1])) continue;
            if (seen[ny * size[0] + nx] || !fields->GetPixel({{nx, ny, z}})) continue;
            seen[ny * size[0] + nx] = 1;
            stack.push_back({static_cast<unsigned>(nx), static_cast<unsigned>(ny)});
          }
        }
        const double area = members.size() * spacing[0] * spacing[1];
        double cx = 0, cy = 0;
        for (auto [mx, my] : members) {
          cx += mx;
          cy += my;
        }
        cx /= members.size();
        cy /= members.size();
        if (area < 80 || area > 700 || sum_hu / members.size() > -800 || std::abs(cx - size[0] / 2.0) > 0.15 * size[0]) continue;
        if (area > best) {
          best = area;
          seed = {{static_cast<long>(std::lround(cx)), static_cast<long>(std::lround(cy)), z}};
          found = true;
        }
      }
    }
  }
  double airway_ml = 0;
  if (found) {
    Mask::Pointer airway;
    for (short upper = -900; upper >= -1000; upper -= 25) {
      auto grow = itk::ConnectedThresholdImageFilter<CtImage, Mask>::New();
      grow->SetInput(ct);
      grow->SetLower(-1024);
      grow->SetUpper(upper);
      grow->SetReplaceValue(1);
      grow->AddSeed(seed);
      airway = Run<itk::ConnectedThresholdImageFilter<CtImage, Mask>>(grow);
      std::size_t n = 0;
      for (itk::ImageRegionConstIterator<Mask> it(airway, airway->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) n += it.Get();
      airway_ml = n * voxel_ml;
      if (airway_ml < 150) break;  // not leaking into the lungs
    }
    using Ball = itk::BinaryBallStructuringElement<unsigned char, 3>;
    Ball ball;
    ball.SetRadius(1);
    ball.CreateStructuringElement();
    auto dilate = itk::BinaryDilateImageFilter<Mask, Mask, Ball>::New();
    dilate->SetInput(airway);
    dilate->SetKernel(ball);
    dilate->SetDilateValue(1);
    airway = Run<itk::BinaryDilateImageFilter<Mask, Mask, Ball>>(dilate);
    for (itk::ImageRegionIterator<Mask> it(fields, fields->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) {
      if (airway->GetPixel(it.GetIndex())) it.Set(0);
    }
  }

  // Lungs: components sided by centroid; one component is split by in-plane erosion and regrown.
  std::size_t count = 0;
  auto components = Components(fields, &count);
  auto shapes = Shapes(components);
  Labels::Pointer sides = Labels::New();
  sides->CopyInformation(ct);
  sides->SetRegions(ct->GetLargestPossibleRegion());
  sides->Allocate(true);
  auto physical_x = [&](const itk::Point<double, 3>& p) { return p[0]; };
  bool split = false;
  if (count >= 2 && shapes->GetLabelObject(2)->GetNumberOfPixels() * 10 >= shapes->GetLabelObject(1)->GetNumberOfPixels()) {
    const bool first_left = physical_x(shapes->GetLabelObject(1)->GetCentroid()) > physical_x(shapes->GetLabelObject(2)->GetCentroid());
    for (itk::ImageRegionIterator<Labels> it(components, components->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) {
      if (it.Get() == 1) sides->SetPixel(it.GetIndex(), first_left ? 2 : 1);
      if (it.Get() == 2) sides->SetPixel(it.GetIndex(), first_left ? 1 : 2);
    }
  } else if (count >= 1) {
    auto lung = Select(components, 1, 1);
    Mask::Pointer eroded = lung;
    using Disk = itk::BinaryBallStructuringElement<unsigned char, 3>;
    Disk disk;
    Disk::SizeType radius;
    radius[0] = 1;
    radius[1] = 1;
    radius[2] = 0;
    disk.SetRadius(radius);
    disk.CreateStructuringElement();
    for (int step = 1; step <= 30 && !split; ++step) {
      auto erode = itk::BinaryErodeImageFilter<Mask, Mask, Disk>::New();
      erode->SetInput(eroded);
      erode->SetKernel(disk);
      erode->SetErodeValue(1);
      eroded = Run<itk::BinaryErodeImageFilter<Mask, Mask, Disk>>(erode);
      std::size_t n = 0;
      auto parts = Components(eroded, &n);
      if (n < 2) continue;
      auto part_shapes = Shapes(parts);
      const auto a = part_shapes->GetLabelObject(1)->GetNumberOfPixels(), b = part_shapes->GetLabelObject(2)->GetNumberOfPixels();
      if (b * 5 < a + b) continue;
      const bool first_left = physical_x(part_shapes->GetLabelObject(1)->GetCentroid()) > physical_x(part_shapes->GetLabelObject(2)->GetCentroid());
      for (itk::ImageRegionIterator<Labels> it(parts, parts->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) {
        if (it.Get() == 1) sides->SetPixel(it.GetIndex(), first_left ? 2 : 1);
        if (it.Get() == 2) sides->SetPixel(it.GetIndex(), first_left ? 1 : 2);
      }
      // Regrow into the lung: grey dilation of the side labels, kept inside it, until stable.
      using Ball = itk::BinaryBallStructuringElement<unsigned int, 3>;
      Ball ball;
      ball.SetRadius(1);
      ball.CreateStructuringElement();
      for (int grow = 0; grow < 4 * step + 4; ++grow) {
        auto dilate = itk::GrayscaleDilateImageFilter<Labels, Labels, Ball>::New();
        dilate->SetInput(sides);
        dilate->SetKernel(ball);
        auto grown = Run<itk::GrayscaleDilateImageFilter<Labels, Labels, Ball>>(dilate);
        bool changed = false;
        for (itk::ImageRegionIterator<Labels> it(sides, sides->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) {
          if (it.Get() == 0 && lung->GetPixel(it.GetIndex()) && grown->GetPixel(it.GetIndex())) {
            it.Set(grown->GetPixel(it.GetIndex()));
            changed = true;
          }
        }
        if (!changed) break;
      }
      split = true;
    }
  }
  // Holes per slice and per lung.
  for (unsigned side = 1; side <= 2; ++side) {
    auto filled = FillHolesPerSlice(Select(sides, side, side));
    for (itk::ImageRegionIterator<Labels> it(sides, sides->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) {
      if (it.Get() == 0 && filled->GetPixel(it.GetIndex())) it.Set(side);
    }
  }

  // Densitometry and emphysema clusters.
  auto lungs = Select(sides, 1, 2);
  auto emphysema = And(Threshold(ct, -32768, -951), lungs);
  std::size_t clusters = 0;
  Components(emphysema, &clusters);
  std::vector<std::vector<uint64_t>> histogram(3, std::vector<uint64_t>(4096, 0));
  std::vector<double> sum(3, 0);
  for (itk::ImageRegionConstIterator<Labels> it(sides, sides->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it) {
    const unsigned s = it.Get();
    if (!s) continue;
    const short hu = ct->GetPixel(it.GetIndex());
    const int bin = std::clamp(hu + 1024, 0, 4095);
    ++histogram[s][bin];
    ++histogram[0][bin];
    sum[s] += hu;
    sum[0] += hu;
  }
  std::ofstream json(std::string(argv[2]) + "/measurements.json");
  json << "{";
  const char* side_names[3] = {"total", "right_lung", "left_lung"};
  for (int s = 0; s < 3; ++s) {
    uint64_t n = 0, below950 = 0, below910 = 0;
    for (int b = 0; b < 4096; ++b) {
      n += histogram[s][b];
      if (b < 74) below950 += histogram[s][b];
      if (b < 114) below910 += histogram[s][b];
    }
    uint64_t cumulative = 0;
    int perc15 = 0;
    for (int b = 0; b < 4096; ++b) {
      cumulative += histogram[s][b];
      if (cumulative >= static_cast<uint64_t>(std::ceil(0.15 * n))) {
        perc15 = b - 1024;
        break;
      }
    }
    char buffer[400];
    std::snprintf(buffer, sizeof buffer,
                  "%s\"%s\": {\"volume_ml\": %.3f, \"mean_lung_density_hu\": %.3f, \"laa950_percent\": %.4f, "
                  "\"laa910_percent\": %.4f, \"perc15_hu\": %d, \"voxels\": %llu}",
                  s ? ", " : "", side_names[s], n * voxel_ml, n ? sum[s] / n : 0.0, n ? 100.0 * below950 / n : 0.0,
                  n ? 100.0 * below910 / n : 0.0, perc15, static_cast<unsigned long long>(n));
    json << buffer;
  }
  json << ", \"emphysema_clusters\": " << clusters << ", \"airway_ml\": " << airway_ml << ", \"split_at_junction\": "
       << (split ? "true" : "false") << "}\n";

  auto writer = itk::ImageFileWriter<Labels>::New();
  writer->SetInput(sides);
  writer->SetFileName(std::string(argv[2]) + "/labels.nii.gz");
  writer->Update();
  return 0;
}
