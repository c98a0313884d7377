// Renders a Plan (plan.h) for `gpt-rank plan`: a text table for people and the same
// figures as one JSON object (--json) for scripts. One source, two views.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "trainer/plan/plan.h"

namespace gpt_rank::plan {

std::string FormatPlanText(const Plan& plan, const train::TrainerConfig& config);
nlohmann::json PlanToJson(const Plan& plan, const train::TrainerConfig& config);

}  // namespace gpt_rank::plan
