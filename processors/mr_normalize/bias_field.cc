#include "processors/mr_normalize/bias_field.h"

#include <itkBSplineControlPointImageFilter.h>
#include <itkCommand.h>
#include <itkImage.h>
#include <itkN4BiasFieldCorrectionImageFilter.h>
#include <itkShrinkImageFilter.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/format.h"

namespace procnode::mr {
namespace {

using FloatImage = itk::Image<float, 3>;
using MaskImage = itk::Image<unsigned char, 3>;
using N4Filter = itk::N4BiasFieldCorrectionImageFilter<FloatImage, MaskImage, FloatImage>;

// An ITK image over the volume's grid in index space (spacing only: N4 needs no orientation).
template <typename Image>
typename Image::Pointer MakeImage(const Volume& v) {
  auto image = Image::New();
  typename Image::RegionType region;
  typename Image::SizeType size;
  typename Image::SpacingType spacing;
  for (int a = 0; a < 3; ++a) {
    size[a] = v.dims[a];
    spacing[a] = std::abs(v.spacing[a]) > 0 ? std::abs(v.spacing[a]) : 1.0;
  }
  region.SetSize(size);
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->Allocate();
  return image;
}

void CheckParameters(const BiasFieldParameters& p) {
  if (p.shrink_factor < 1 || p.shrink_factor > 16) throw Error(ErrorCode::kInvalidInput, "N4: shrink_factor must lie in 1-16");
  if (p.levels < 1 || p.levels > 8) throw Error(ErrorCode::kInvalidInput, "N4: levels must lie in 1-8");
  if (p.iterations < 1 || p.iterations > 1000) throw Error(ErrorCode::kInvalidInput, "N4: iterations must lie in 1-1000");
  if (!(p.convergence >= 0)) throw Error(ErrorCode::kInvalidInput, "N4: convergence must not be negative");
  if (!(p.spline_distance_mm >= 10)) throw Error(ErrorCode::kInvalidInput, "N4: spline_distance_mm must be at least 10");
  if (!(p.fwhm > 0)) throw Error(ErrorCode::kInvalidInput, "N4: fwhm must be positive");
  if (p.histogram_bins < 10) throw Error(ErrorCode::kInvalidInput, "N4: histogram_bins must be at least 10");
}

}  // namespace

BiasField EstimateBiasField(const Volume& volume, const std::vector<uint8_t>& mask, const BiasFieldParameters& p,
                            const BiasFieldHooks& hooks) {
  CheckParameters(p);
  const auto started = std::chrono::steady_clock::now();
  const std::size_t n = volume.VoxelCount();
  if (volume.voxels.size() != n || mask.size() != n) throw Error(ErrorCode::kInvalidInput, "N4: the mask does not match the image");
  // N4 works on log intensities: voxels at or below 0 stay out of the estimate.
  FloatImage::Pointer image = MakeImage<FloatImage>(volume);
  MaskImage::Pointer image_mask = MakeImage<MaskImage>(volume);
  float* pixels = image->GetBufferPointer();
  unsigned char* inside = image_mask->GetBufferPointer();
  std::size_t counted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool in = mask[i] && volume.voxels[i] > 0;
    inside[i] = in ? 1 : 0;
    pixels[i] = in ? volume.voxels[i] : 1.0f;
    counted += in;
  }
  if (counted < 1000) {
    throw Error(ErrorCode::kInvalidInput, "N4: the foreground holds " + std::to_string(counted) + " positive voxels, fewer than 1000");
  }

  // Shrunk copies: each axis keeps at least 16 voxels.
  itk::FixedArray<unsigned int, 3> factors;
  BiasField result;
  for (int a = 0; a < 3; ++a) {
    factors[a] = static_cast<unsigned int>(std::clamp<std::size_t>(volume.dims[a] / 16, 1, p.shrink_factor));
  }
  auto shrink = itk::ShrinkImageFilter<FloatImage, FloatImage>::New();
  shrink->SetInput(image);
  shrink->SetShrinkFactors(factors);
  auto shrink_mask = itk::ShrinkImageFilter<MaskImage, MaskImage>::New();
  shrink_mask->SetInput(image_mask);
  shrink_mask->SetShrinkFactors(factors);

  auto n4 = N4Filter::New();
  n4->SetInput(shrink->GetOutput());
  n4->SetMaskImage(shrink_mask->GetOutput());
  n4->SetUseMaskLabel(false);  // any non-zero mask voxel
  N4Filter::VariableSizeArrayType iterations(p.levels);
  iterations.Fill(p.iterations);
  n4->SetMaximumNumberOfIterations(iterations);
  N4Filter::ArrayType levels;
  levels.Fill(p.levels);
  n4->SetNumberOfFittingLevels(levels);
  n4->SetConvergenceThreshold(static_cast<float>(p.convergence));
  n4->SetBiasFieldFullWidthAtHalfMaximum(static_cast<float>(p.fwhm));
  n4->SetNumberOfHistogramBins(p.histogram_bins);
  n4->SetSplineOrder(3);
  // The first level's mesh: one span per spline distance over the image's extent (as ANTs'
  // N4BiasFieldCorrection --bspline-fitting [distance]), plus the spline order.
  N4Filter::ArrayType control_points;
  for (int a = 0; a < 3; ++a) {
    const double extent = std::abs(volume.spacing[a] != 0 ? volume.spacing[a] : 1.0) * (volume.dims[a] - 1);
    const unsigned spans = static_cast<unsigned>(std::max(1.0, std::ceil(extent / p.spline_distance_mm)));
    control_points[a] = spans + 3;
  }
  n4->SetNumberOfControlPoints(control_points);

  std::vector<int> per_level(p.levels, 0);
  auto observer = itk::CStyleCommand::New();
  struct Watch {
    N4Filter* filter;
    const BiasFieldHooks* hooks;
    const BiasFieldParameters* p;
    std::vector<int>* per_level;
  } watch{n4.GetPointer(), &hooks, &p, &per_level};
  observer->SetClientData(&watch);
  observer->SetCallback([](itk::Object*, const itk::EventObject&, void* data) {
    auto* w = static_cast<Watch*>(data);
    const unsigned level = w->filter->GetCurrentLevel();
    const unsigned done = w->filter->GetElapsedIterations();
    if (level < w->per_level->size()) (*w->per_level)[level] = static_cast<int>(done);
    if (w->hooks->stop_requested && w->hooks->stop_requested()) w->filter->AbortGenerateDataOn();
    if (w->hooks->progress) {
      const double fraction = (level + std::min(1.0, static_cast<double>(done) / w->p->iterations)) / w->p->levels;
      w->hooks->progress(0.9 * fraction, "N4 level " + std::to_string(level + 1) + " of " + std::to_string(w->p->levels) +
                                             ", iteration " + std::to_string(done));
    }
  });
  n4->AddObserver(itk::IterationEvent(), observer);

  using Spliner = itk::BSplineControlPointImageFilter<N4Filter::BiasFieldControlPointLatticeType, N4Filter::ScalarImageType>;
  auto spliner = Spliner::New();
  try {
    n4->Update();
    if (hooks.stop_requested && hooks.stop_requested()) throw Error(ErrorCode::kCancelled, "N4: cancelled");
    if (hooks.progress) hooks.progress(0.9, "N4: the field at full resolution");
    // The field at full resolution, from the last level's control-point lattice.
    spliner->SetInput(n4->GetLogBiasFieldControlPointLattice());
    spliner->SetSplineOrder(n4->GetSplineOrder());
    spliner->SetSize(image->GetLargestPossibleRegion().GetSize());
    spliner->SetOrigin(image->GetOrigin());
    spliner->SetSpacing(image->GetSpacing());
    spliner->SetDirection(image->GetDirection());
    spliner->Update();
  } catch (const itk::ProcessAborted&) {
    throw Error(ErrorCode::kCancelled, "N4: cancelled");
  } catch (const itk::ExceptionObject& e) {
    if (hooks.stop_requested && hooks.stop_requested()) throw Error(ErrorCode::kCancelled, "N4: cancelled");
    throw Error(ErrorCode::kProcessorFailed, std::string("N4 (ITK): ") + e.GetDescription());
  }
  const auto shrunk = shrink->GetOutput()->GetLargestPossibleRegion().GetSize();
  result.shrunk_dims = {shrunk[0], shrunk[1], shrunk[2]};
  result.iterations = per_level;

  const N4Filter::ScalarType* log_field = spliner->GetOutput()->GetBufferPointer();
  result.field.resize(n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    result.field[i] = std::exp(log_field[i][0]);
    if (inside[i]) sum += result.field[i];
  }
  const double mean = sum / counted;
  if (!(mean > 0) || !std::isfinite(mean)) throw Error(ErrorCode::kProcessorFailed, "N4: the estimated field is not finite");
  result.minimum = std::numeric_limits<double>::infinity();
  result.maximum = -result.minimum;
  for (std::size_t i = 0; i < n; ++i) {
    result.field[i] = static_cast<float>(result.field[i] / mean);
    if (!inside[i]) continue;
    result.minimum = std::min<double>(result.minimum, result.field[i]);
    result.maximum = std::max<double>(result.maximum, result.field[i]);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (hooks.progress) hooks.progress(1.0, "N4: done");
  return result;
}

std::vector<float> CorrectBias(const std::vector<float>& values, const std::vector<float>& field) {
  if (values.size() != field.size()) throw Error(ErrorCode::kInvalidInput, "N4: the field does not match the image");
  std::vector<float> corrected(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) corrected[i] = field[i] > 0 ? values[i] / field[i] : values[i];
  return corrected;
}

}  // namespace procnode::mr
