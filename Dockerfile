# The gateway's container image, built from the repository root:
#   docker build -t pushservice/gateway:1.0.0 .
# Multi-stage: the SDK image restores and publishes; the runtime image (ASP.NET Core, no SDK, no shell tools beyond
# the base image's) runs it as the non-root `app` user. deploy/helm/pushservice runs this image; docs/deploy.md.
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
# Project files first: the package restore stays cached until a dependency changes.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Broker/PushService.Broker.csproj src/Broker/
COPY src/Gateway/PushService.Gateway.csproj src/Gateway/
RUN dotnet restore src/Gateway/PushService.Gateway.csproj
# The sources, and the TypeScript client as committed (src/Sdk/js/dist), which the gateway embeds: no npm needed here.
COPY src/Broker/ src/Broker/
COPY src/Gateway/ src/Gateway/
COPY src/Sdk/js/dist/ src/Sdk/js/dist/
RUN dotnet publish src/Gateway/PushService.Gateway.csproj -c Release -o /app --no-restore -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
WORKDIR /app
# The runtime settings the gateway's figures were measured with (docs/benchmarks.md): socket completions on the
# runtime's event thread, workstation concurrent GC with a 4 MiB gen-0 budget. The chart sets them too, so an operator
# sees and can change them.
ENV DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 \
    DOTNET_gcServer=0 \
    DOTNET_gcConcurrent=1 \
    DOTNET_GCgen0size=0x400000 \
    DOTNET_NOLOGO=1
COPY --from=build /app ./
USER $APP_UID
EXPOSE 8080
ENTRYPOINT ["dotnet", "PushService.Gateway.dll"]
# Replaced by the chart's container args; appsettings.json's default listens on localhost only.
CMD ["--urls=http://+:8080"]
