// gpt-rank's verbs: one function per verb, each in its own file in trainer/cli/,
// listed in the table in trainer/gpt_rank_main.cc. args[0] is the verb's name.
// Each returns the process exit code: 0 done, 1 training failed, 2 bad usage or config.
#pragma once

#include <string>
#include <vector>

namespace gpt_rank::cli {

int RunTrain(const std::vector<std::string>& args);       // train.cc
int RunPlan(const std::vector<std::string>& args);        // plan.cc
int RunPreprocess(const std::vector<std::string>& args);  // preprocess.cc
int RunDataInfo(const std::vector<std::string>& args);    // data_info.cc
int RunGenerate(const std::vector<std::string>& args);    // generate.cc
int RunExportHf(const std::vector<std::string>& args);    // hf.cc
int RunImportHf(const std::vector<std::string>& args);    // hf.cc

}  // namespace gpt_rank::cli
